"""ConvNN's pixel-shuffle pattern (the public ConvNN code's ``shuffle_pattern`` / ``shuffle_scale``).

The layer with a shuffle equals, built by hand: ``F.pixel_unshuffle`` (pattern B, BA), a plain
``ConvNN2d`` on the widened channels holding the same weights, then ``F.pixel_shuffle`` (A, BA).
In 1-D the code's shuffle is a reshape of the (C, N) block, written out here with ``view``.
"""

import pytest
import torch
import torch.nn.functional as F

import operators
from operators import ConvNN1d, ConvNN2d

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
CASES = [("BA", 2, (2, 3, 8, 6), 5, "cosine"), ("B", 2, (1, 3, 8, 8), 9, "euclidean"),
         ("A", 2, (2, 3, 4, 5), 4, "cosine"), ("BA", 3, (1, 2, 9, 6), 3, "hybrid"), ("NA", 1, (2, 3, 5, 4), 5, "cosine"),
         ("B", 2, (2, 3, 6, 6), 9, "location")]


def _grads(out, ref, x):
    cot = torch.randn_like(out)
    return torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed, case", list(enumerate(CASES)))
def test_2d_shuffle_is_unshuffle_convnn_shuffle_by_hand(seed, case, dtype):
    pattern, scale, shape, k, similarity = case
    torch.manual_seed(seed)
    c_in, c_out = shape[1], 4
    layer = ConvNN2d(c_in, c_out, k=k, similarity=similarity, shuffle_pattern=pattern, shuffle_scale=scale,
                     dtype=dtype)
    widen = scale * scale
    inner = ConvNN2d(c_in * widen if "B" in pattern else c_in, c_out * widen if "A" in pattern else c_out, k=k,
                     similarity=similarity, dtype=dtype)
    inner.load_state_dict(layer.state_dict())  # the same keys: weight, bias
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    h = F.pixel_unshuffle(x, scale) if "B" in pattern else x
    ref = inner(h)
    ref = F.pixel_shuffle(ref, scale) if "A" in pattern else ref
    out = layer(x)
    size = [n // scale if "B" in pattern else n for n in shape[2:]]
    assert out.shape == (shape[0], c_out, *[n * scale if "A" in pattern else n for n in size])
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    torch.testing.assert_close(*_grads(out, ref, x), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("pattern, scale, n", [("BA", 2, 12), ("B", 3, 18), ("A", 2, 7)])
def test_1d_shuffle_is_the_codes_reshape(pattern, scale, n, dtype):
    torch.manual_seed(n)
    layer = ConvNN1d(3, 4, k=3, shuffle_pattern=pattern, shuffle_scale=scale, dtype=dtype)
    inner = ConvNN1d(3 * scale if "B" in pattern else 3, 4 * scale if "A" in pattern else 4, k=3, dtype=dtype)
    inner.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, n, dtype=dtype, requires_grad=True)
    h = x.reshape(2, 3 * scale, n // scale) if "B" in pattern else x  # PixelUnshuffle1D
    ref = inner(h)
    ref = ref.reshape(2, 4, -1) if "A" in pattern else ref  # PixelShuffle1D
    out = layer(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    torch.testing.assert_close(*_grads(out, ref, x), rtol=0, atol=TOL[dtype])


def test_weight_has_the_widened_channels_and_neighborhood_is_on_the_unshuffled_grid():
    layer = ConvNN2d(3, 5, k=5, shuffle_pattern="BA", shuffle_scale=2)
    assert (layer.in_channels, layer.out_channels) == (3, 5)
    assert layer.weight.shape == (20, 12, 5) and layer.bias.shape == (20,)
    nbhd = layer.neighborhood(torch.randn(2, 3, 8, 6))
    assert tuple(nbhd.query_shape) == (4, 3)
    assert "shuffle_pattern='BA', shuffle_scale=2" in repr(layer)
    y = operators.create("conv_nn2d_shuffle", in_channels=4)(torch.randn(2, 4, 6, 6))
    assert y.shape == (2, 4, 6, 6)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(shuffle_pattern="C"), ValueError, ["shuffle_pattern", "'C'"]),
    (dict(shuffle_pattern="BA", shuffle_scale=0), ValueError, ["shuffle_scale", "0"]),
    (dict(shuffle_pattern="BA", shuffle_scale=2.0), TypeError, ["shuffle_scale"]),
])
def test_bad_shuffle_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        ConvNN2d(3, 4, k=3, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_a_scale_that_does_not_divide_the_image_is_named():
    layer = ConvNN2d(3, 4, k=3, shuffle_pattern="B", shuffle_scale=2)
    with pytest.raises(ValueError, match=r"shuffle_scale=2 must divide.*\(1, 3, 5, 6\)"):
        layer(torch.randn(1, 3, 5, 6))
    with pytest.raises(ValueError, match="channels"):
        layer(torch.randn(1, 4, 6, 6))


@pytest.mark.parametrize("pattern", ["B", "BA"])
def test_query_map_paints_each_unshuffled_token_on_its_block_of_pixels(pattern):
    torch.manual_seed(3)
    layer = ConvNN2d(3, 4, k=5, shuffle_pattern=pattern, shuffle_scale=2).double()
    inner = ConvNN2d(12, 16 if "A" in pattern else 4, k=5).double()
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    nbhd, small = layer.neighborhood(x), inner.neighborhood(F.pixel_unshuffle(x, 2))
    for query in (0, 5, 11):
        ref = small.query_map(query, batch=1).repeat_interleave(2, 0).repeat_interleave(2, 1) / 4
        torch.testing.assert_close(nbhd.query_map(query, batch=1).double(), ref.double(), rtol=0, atol=1e-6)
    assert nbhd.query_at((5, 3)) == 2 * 3 + 1  # pixel (5, 3) lies in the unshuffled token (2, 1)


def test_1d_query_map_paints_each_token_on_the_pixels_the_reshape_took():
    layer = ConvNN1d(2, 2, k=3, shuffle_pattern="B", shuffle_scale=3).double()
    x = torch.randn(1, 2, 12, dtype=torch.float64)
    nbhd = layer.neighborhood(x)
    picked = nbhd.index[0, 1]  # the 3 unshuffled tokens query 1 gathers
    ref = torch.zeros(12, dtype=torch.float64)
    for t in picked.tolist():
        ref[[t, t + 4, t + 8]] += 1 / 3  # token t holds pixels t, t + N/s, t + 2 N/s
    torch.testing.assert_close(nbhd.query_map(1).double(), ref, rtol=0, atol=1e-6)  # hard slots paint in float32


def test_3d_takes_no_shuffle():
    with pytest.raises(ValueError, match="ConvNN3d takes only 'NA', got shuffle_pattern='BA'"):
        operators.ConvNN3d(3, 4, k=3, shuffle_pattern="BA", shuffle_scale=2)
