"""The 3-D twins: Conv3d equals torch.nn.Conv3d; NonLocalBlock3d equals Wang et al.'s Eqs. 1-6 on a
video, with keys and values pooled over space only, (1, 2, 2); ConvNN3d 'location' equals Conv3d and
otherwise picks the k nearest of all T H W tokens; SelfAttention3d is SelfAttention2d on the
flattened (T, H W) image; swap and convert handle nn.Conv3d.

Forward and gradients (input and parameters), both paths: float64 to 1e-10, float32 to 1e-4
(scaled by the reference's magnitude, :func:`comparisons.theorems.base.max_error`).
"""

import copy

import pytest
import torch
import torch.nn.functional as F

import operators
from comparisons.theorems.base import max_error
from operators import (Conv3d, ConvNN3d, NeighborhoodAttention3d, NonLocalBlock3d, SelfAttention2d,
                       SelfAttention3d)

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


# ---- ConvNN3d ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("width, stride, padding", [(3, 1, None), (1, 1, None), (3, 2, 1), (3, (1, 2, 2), 0)])
def test_conv_nn3d_location_is_conv3d(width, stride, padding, dtype):
    """k = (2r+1)^3 nearest positions are the cube window: ConvNN3d 'location' = F.conv3d with its weight."""
    kwargs = {} if padding is None else dict(stride=stride, padding=padding, candidate_padding=1)
    pads = (width - 1) // 2 if padding is None else padding
    for seed in range(2):
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        layer = ConvNN3d(3, 5, k=width ** 3, similarity="location", dtype=dtype, **kwargs)
        x = torch.randn(2, 3, 4, 5, 6, generator=generator, dtype=dtype, requires_grad=True)

        def conv3d():
            return F.conv3d(x, layer.weight.reshape(5, 3, width, width, width), layer.bias, stride, pads)

        for path in ("fast", "reference"):
            err = max_error(lambda: layer(x, path=path), conv3d, [x, layer.weight, layer.bias], generator)
            assert err <= TOL[dtype], (seed, path, err)


def test_create_conv_nn3d_location_takes_the_conv3d_fast_path():
    layer = operators.create("conv_nn3d_location", in_channels=4, k=27)
    x = torch.randn(1, 4, 3, 4, 5)
    assert layer.fast_path_name(x) == "F.conv3d" and layer(x).shape == x.shape
    assert operators.info("conv_nn3d").layout == "(B, C, T, H, W)" and operators.canonical("convnn3d") == "conv_nn3d"


def test_conv_nn3d_picks_the_k_nearest_video_tokens():
    """Slot 0 is the query; the others are its k-1 most cosine-similar tokens anywhere in T x H x W."""
    torch.manual_seed(0)
    layer = operators.create("conv_nn3d", in_channels=3, k=4).double()
    x = torch.randn(2, 3, 2, 3, 4, dtype=torch.float64)
    index = layer.neighborhood(x).index  # (B, N, k)
    tokens = torch.nn.functional.normalize(x.flatten(2).transpose(1, 2), dim=-1)
    scores = tokens @ tokens.transpose(1, 2)
    scores.diagonal(dim1=1, dim2=2).fill_(-float("inf"))
    assert torch.equal(index[..., 0], torch.arange(24).expand(2, -1))
    assert torch.equal(index[..., 1:], scores.topk(3, dim=-1).indices)


def test_hard_knn_takes_any_number_of_axes():
    from neighborhoods.selectors import HardKNN

    nbhd = HardKNN(27, space="positions", metric="chebyshev", ndim=3, padding=1, self_first=False,
                   order="index")(torch.randn(1, 2, 3, 3, 3))
    assert nbhd.index.shape == (1, 27, 27) and bool(nbhd.valid[0, 13].all())  # the centre's window is the grid


# ---- SelfAttention3d ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_self_attention3d_is_self_attention2d_on_the_flattened_video(dtype):
    for seed in range(2):
        generator = torch.Generator().manual_seed(seed)
        layer = SelfAttention3d(6, 2, out_channels=5, dtype=dtype)
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * 0.5)
        flat = SelfAttention2d(6, 2, out_channels=5, dtype=dtype)
        flat.load_state_dict(layer.state_dict())
        x = torch.randn(2, 6, 3, 2, 4, generator=generator, dtype=dtype, requires_grad=True)
        for path in ("fast", "reference"):
            err = max_error(lambda: layer(x, path=path), lambda: flat(x.reshape(2, 6, 3, 8)).reshape(2, 5, 3, 2, 4),
                            [x], generator, a_params=list(layer.parameters()), b_params=list(flat.parameters()))
            assert err <= TOL[dtype], (seed, path, err)


def test_self_attention3d_strides_and_shapes():
    layer = operators.create("self_attention3d", in_channels=4, num_heads=2, stride=(1, 2, 2))
    assert layer(torch.randn(2, 4, 3, 5, 6)).shape == (2, 4, 3, 3, 3)
    assert operators.info("self_attention3d").layout == "(B, C, T, H, W)"
    with pytest.raises(ValueError, match="5 dimensions"):
        layer(torch.randn(2, 4, 5, 6))


def test_neighborhood_attention3d_and_self_attention3d_share_a_state_dict():
    na, sa = NeighborhoodAttention3d(8, 2, 3), SelfAttention3d(8, 2)
    assert list(na.state_dict()) == list(sa.state_dict())
    na.load_state_dict(sa.state_dict())
    sa.load_state_dict(na.state_dict())
    x = torch.randn(1, 8, 3, 3, 3)
    torch.testing.assert_close(na(x), sa(x), rtol=1e-5, atol=1e-5)  # a 3x3x3 window covers the 3x3x3 input


# ---- swap and convert -----------------------------------------------------------------------------
def test_swap_replaces_3x3x3_conv3d_layers():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 6, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv3d(6, 6, 3, stride=(1, 2, 2), padding=1), torch.nn.Conv3d(6, 2, 1),
                              torch.nn.Conv2d(2, 2, 3)).double()
    x = torch.randn(2, 3, 3, 6, 6, dtype=torch.float64)
    before = net[:4](x)
    exact = copy.deepcopy(net)
    report = operators.swap(exact, "conv_nn3d_location", copy_weights=True)
    assert [e.name for e in report.replaced] == ["0", "2"] and [e.name for e in report.skipped] == ["3", "4"]
    assert "nn.Conv3d" in report.skipped[1].detail
    torch.testing.assert_close(exact[:4](x), before, rtol=1e-10, atol=1e-10)
    report = operators.swap(net, "self_attention3d")
    assert len(report.replaced) == 2 and net[:4](x).shape == before.shape
    # a 2-D operator replaces the Conv2d and leaves the Conv3d layers alone
    assert [e.name for e in operators.swap(copy.deepcopy(net), "conv_nn2d").replaced] == ["4"]


@pytest.mark.parametrize("name", ["conv3d", "conv_nn3d_location"])
def test_convert_copies_a_conv3d_exactly(name):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(3, 4, 3, stride=(1, 2, 1), padding=1).double()
    layer = operators.convert(conv, name)
    x = torch.randn(2, 3, 3, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="converts a torch.nn.Conv3d"):
        operators.convert(torch.nn.Conv2d(3, 4, 3), name)
