"""CordonnierAttention2d: 9 positional attention heads that are a 3x3 convolution (Cordonnier et al. 2020).

The theorems (`cordonnier.attention==conv2d`, `cordonnier.finite_alpha<=bound`) run in
tests/comparisons/theorems/test_theorems.py; here: against torch's own Conv2d, the error
falling with alpha, what each head looks at, the border rules, and bad input.
"""

import pytest
import torch
import torch.nn.functional as F

import operators
from operators import CordonnierAttention2d
from operators.cordonnier import kernel_offsets, off_centre_mass


@pytest.mark.parametrize("mode", ["zeros", "replicate"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_from_conv_equals_torch_conv(mode, seed, dtype, tol):
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, padding_mode=mode, dtype=dtype)
    layer = CordonnierAttention2d.from_conv(conv)
    x = torch.randn(2, 3, 6, 8, dtype=dtype, requires_grad=True)
    ours, theirs = layer(x), conv(x)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=tol)
    g = torch.randn_like(ours)
    (gx_ours,) = torch.autograd.grad(ours, x, g)
    (gx_theirs,) = torch.autograd.grad(theirs, x, g)
    torch.testing.assert_close(gx_ours, gx_theirs, rtol=0, atol=tol)


def test_error_falls_like_exp_minus_alpha_and_stays_under_the_bound():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, dtype=torch.float64)
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    errors = []
    for alpha in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0):
        layer = CordonnierAttention2d.from_conv(conv, alpha=alpha)
        with torch.no_grad():
            err = float((layer(x) - conv(x)).abs().max())
        assert err <= layer.conv_error_bound(x) + 1e-12, (alpha, err)
        errors.append(err)
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[3] / errors[4] > 1e2 and errors[-1] < 1e-12, errors  # alpha 8 -> 16: about e^-8 smaller


def test_off_centre_mass_matches_a_direct_lattice_sum():
    for alpha in (0.3, 1.0, 5.0):
        n = torch.arange(-40, 41, dtype=torch.float64)
        grid = n[:, None] ** 2 + n[None, :] ** 2
        direct = float(torch.exp(-alpha * grid).sum() - 1.0)
        assert abs(off_centre_mass(alpha) - direct) <= 1e-12 * max(1.0, direct)
    assert 0 < off_centre_mass(46.0) <= 4.01 * torch.exp(torch.tensor(-46.0, dtype=torch.float64)).item()


def test_each_head_looks_at_its_offset():
    """Head h's map for an interior query is one-hot on q + Delta_h, the heads in a conv weight's raster order."""
    layer = CordonnierAttention2d(1, 1, 3, dtype=torch.float64)
    x = torch.randn(1, 1, 6, 7, dtype=torch.float64)
    nbhd = layer.neighborhood(x)
    q = (3, 2)
    for h, (dr, dc) in enumerate(kernel_offsets(3).long().tolist()):
        expected = torch.zeros(6, 7, dtype=torch.float64)
        expected[q[0] + dr, q[1] + dc] = 1.0
        torch.testing.assert_close(nbhd.query_map(q, head=h), expected, rtol=0, atol=1e-15)


def test_borders_zero_padding_loses_mass_image_keys_clamp():
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    corner = (0, 0)
    zeros = CordonnierAttention2d(1, 1, 3, padding="zeros", dtype=torch.float64).neighborhood(x)
    image = CordonnierAttention2d(1, 1, 3, padding="none", dtype=torch.float64).neighborhood(x)
    # head 0 looks up-left (-1, -1): off the image. Zero-padded keys: its weight fell on padding.
    assert float(zeros.query_map(corner, head=0).sum()) < 1e-15
    # image-only keys: the nearest image pixel, the corner itself (replicate padding)
    assert float(image.query_map(corner, head=0)[0, 0]) == pytest.approx(1.0, abs=1e-15)
    # head 1 looks up (-1, 0) from (0, 2): the clamp is (0, 2)
    assert float(image.query_map((0, 2), head=1)[0, 2]) == pytest.approx(1.0, abs=1e-15)


def test_interior_pixels_agree_whatever_the_border_rule():
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(2, 2, 3, padding=1, dtype=torch.float64)
    replicate = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate", dtype=torch.float64)
    replicate.load_state_dict(conv.state_dict())
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    a, b = CordonnierAttention2d.from_conv(conv)(x), CordonnierAttention2d.from_conv(replicate)(x)
    torch.testing.assert_close(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], rtol=0, atol=1e-12)
    assert (a[..., 0, :] - b[..., 0, :]).abs().max() > 1e-3  # the borders do differ


def test_five_by_five_needs_25_heads_and_equals_the_conv():
    conv = torch.nn.Conv2d(2, 3, 5, padding="same", dtype=torch.float64)
    layer = CordonnierAttention2d.from_conv(conv)
    assert layer.num_heads == 25 and layer.neighborhood(torch.zeros(1, 2, 6, 6, dtype=torch.float64)).num_heads == 25
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), F.conv2d(x, conv.weight, conv.bias, padding=2), rtol=0, atol=1e-10)


def test_registered_and_as_many_parameters_as_a_conv_plus_the_encoding():
    layer = operators.create("cordonnier_attention2d", in_channels=4, out_channels=6)
    assert isinstance(layer, CordonnierAttention2d) and layer.num_heads == 9
    conv = torch.nn.Conv2d(4, 6, 3)
    n_conv = sum(p.numel() for p in conv.parameters())
    n_ours = sum(p.numel() for p in layer.parameters())
    assert n_ours == n_conv + 9 * 2 + 9  # + the heads' centres and alphas


@pytest.mark.parametrize("kwargs,match", [
    (dict(conv=torch.nn.Conv2d(2, 2, 3, stride=2, padding=1)), "stride"),
    (dict(conv=torch.nn.Conv2d(2, 2, 3, padding=0)), "padding"),
    (dict(conv=torch.nn.Conv2d(2, 2, (3, 5), padding=(1, 2))), "kernel_size"),
    (dict(conv=torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular")), "padding_mode"),
    (dict(conv=torch.nn.Conv2d(2, 2, 3, padding=1, groups=2)), "groups"),
])
def test_from_conv_refuses_what_it_cannot_express(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CordonnierAttention2d.from_conv(**kwargs)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="conv"):
        CordonnierAttention2d.from_conv(torch.nn.Conv1d(2, 2, 3))
    with pytest.raises(ValueError, match="kernel_size"):
        CordonnierAttention2d(2, 2, kernel_size=4)
    with pytest.raises(ValueError, match="alpha"):
        CordonnierAttention2d(2, 2, alpha=0.0)
    with pytest.raises(ValueError, match="padding"):
        CordonnierAttention2d(2, 2, padding="reflect")
    with pytest.raises(ValueError, match="weight"):
        CordonnierAttention2d(2, 3).load_conv_weight(torch.zeros(3, 2, 5, 5))
