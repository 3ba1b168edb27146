"""The 3-D twins: Conv3d equals torch.nn.Conv3d; NonLocalBlock3d equals Wang et al.'s Eqs. 1-6 on a
video, with keys and values pooled over space only, (1, 2, 2).

Forward and gradients (input and parameters), both paths: float64 to 1e-10, float32 to 1e-4
(scaled by the reference's magnitude, :func:`comparisons.theorems.base.max_error`).
"""

import pytest
import torch
import torch.nn.functional as F

import operators
from comparisons.theorems.base import max_error
from operators import Conv3d, NonLocalBlock3d

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
#: (kernel, stride, padding, dilation, groups, padding_mode)
CONV3D_CASES = [(3, 1, 1, 1, 1, "zeros"), ((1, 3, 2), 1, "same", 1, 2, "reflect"), (3, 2, (1, 0, 1), 1, 4, "zeros"),
                ((2, 3, 3), 1, 0, (1, 2, 1), 1, "circular"), (1, 1, 0, 1, 1, "zeros")]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CONV3D_CASES, ids=str)
def test_conv3d_equals_torch(case, dtype):
    kernel, stride, padding, dilation, groups, mode = case
    generator = torch.Generator().manual_seed(0)
    args = (4, 8, kernel, stride, padding, dilation, groups)
    ours = Conv3d(*args, padding_mode=mode, dtype=dtype)
    theirs = torch.nn.Conv3d(*args, padding_mode=mode, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 4, 5, 6, 7, generator=generator, dtype=dtype, requires_grad=True)
    for path in ("fast", "reference"):
        err = max_error(lambda: ours(x, path=path), lambda: theirs(x), [x], generator,
                        a_params=[ours.weight, ours.bias], b_params=[theirs.weight, theirs.bias])
        assert err <= TOL[dtype], (path, err)


def test_create_conv3d_is_a_3x3x3_same_conv():
    torch.manual_seed(0)
    ours = operators.create("conv3d", in_channels=4, out_channels=6).double()
    theirs = torch.nn.Conv3d(4, 6, 3, padding=1).double()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 3, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-12)
    assert ours.fast_path_name(x) == "F.conv3d" and operators.info("conv3d").layout == "(B, C, T, H, W)"


def non_local_formula(block, x):
    """Eqs. 1, 2-4, 6 written out densely; phi and g pooled by F.max_pool3d((1, 2, 2)) when sub-sampling."""
    b, c = x.shape[:2]
    n = x.shape[2:].numel()

    def pool(t):
        return F.max_pool3d(t, (1, 2, 2)) if block.sub_sample else t

    def conv(layer, t):  # a 1x1x1 Conv3d, written as a matrix product
        layer = layer[0] if isinstance(layer, torch.nn.Sequential) else layer
        return torch.einsum("oc,bc...->bo...", layer.weight[:, :, 0, 0, 0], t) + layer.bias.view(1, -1, 1, 1, 1)

    if block.mode == "gaussian":
        theta, phi = x, pool(x)
    else:
        theta, phi = conv(block.theta, x), pool(conv(block.phi, x))
    g = pool(conv(block.g, x)).flatten(2)                       # (b, i, m)
    f = torch.einsum("bin,bim->bnm", theta.flatten(2), phi.flatten(2))
    a = f.softmax(-1) if block.mode in ("gaussian", "embedded_gaussian") else f / f.shape[-1]
    y = torch.einsum("bnm,bim->bin", a, g).reshape(b, -1, *x.shape[2:])
    return block.W(y) + x


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["embedded_gaussian", "gaussian", "dot_product"])
@pytest.mark.parametrize("sub_sample", [True, False])
def test_non_local_block3d_equals_the_formula(mode, sub_sample, dtype):
    generator = torch.Generator().manual_seed(1)
    block = NonLocalBlock3d(8, mode=mode, sub_sample=sub_sample, dtype=dtype)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * 0.5)
    x = torch.randn(2, 8, 3, 6, 5, generator=generator, dtype=dtype, requires_grad=True)
    for path in ("auto", "reference"):
        err = max_error(lambda: block(x, path=path), lambda: non_local_formula(block, x), [x, *block.parameters()],
                        generator)
        assert err <= TOL[dtype], (path, err)


def test_non_local_block3d_pools_space_not_time():
    block = operators.create("non_local_block3d", in_channels=8)
    x = torch.randn(2, 8, 4, 16, 16)
    assert block(x).shape == x.shape
    assert block.neighborhood(x).weight.shape == (2, 1, 4 * 16 * 16, 4 * 8 * 8, 1)  # keys (1, 2, 2)-pooled
    corner = block.neighborhood(x).query_map(0)  # a key covers 1 x 2 x 2 pixels
    assert corner.shape == (4, 16, 16) and torch.isclose(corner.sum(), torch.tensor(1.0))
