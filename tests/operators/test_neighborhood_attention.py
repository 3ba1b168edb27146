"""Neighbourhood attention: a window covering the input is self-attention; otherwise it is the
softmax over the shifted window written out densely.

Each theorem compares two independent computations on random inputs and weights, forward and
gradients (input and every parameter), both paths of the layer: float64 to 1e-10, float32 to
1e-4 (scaled by the values' magnitude, :func:`comparisons.theorems.base.max_error`).
"""

import math

import pytest
import torch

import operators
from comparisons.theorems.base import max_error
from neighborhoods.functional import neighborhood_window_index
from operators import NeighborhoodAttention1d, NeighborhoodAttention2d, NeighborhoodAttention3d, SelfAttention2d

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
PATHS = ("fast", "reference")


def randomize(layer, generator):
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.5)
    return layer


# (class, input shape, kernel covering it, heads): a 1-D / 3-D grid is a (1, N) / (T, H * W) image
# to SelfAttention2d, since tokens are numbered row-major either way
COVERING = [
    (NeighborhoodAttention2d, (2, 8, 7, 7), 7, 2),
    (NeighborhoodAttention2d, (3, 4, 5, 7), (5, 7), 1),
    (NeighborhoodAttention2d, (1, 6, 4, 4), 4, 3),
    (NeighborhoodAttention1d, (2, 4, 9), 9, 2),
    (NeighborhoodAttention3d, (2, 4, 3, 4, 5), (3, 4, 5), 2),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cls, shape, kernel, heads", COVERING, ids=lambda v: getattr(v, "__name__", str(v)))
def test_covering_window_equals_self_attention2d(cls, shape, kernel, heads, dtype):
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        c = shape[1]
        na = randomize(cls(c, heads, kernel, dtype=dtype), generator)
        sa = SelfAttention2d(c, heads, dtype=dtype)
        sa.load_state_dict(na.state_dict())  # same parameter names, strict
        x = torch.randn(*shape, generator=generator, dtype=dtype, requires_grad=True)
        image = (shape[0], c, 1, shape[2]) if len(shape) == 3 else (shape[0], c, shape[2], math.prod(shape[3:]))
        for path in PATHS:
            err = max_error(lambda: na(x, path=path), lambda: sa(x.reshape(image)).reshape(x.shape), [x], generator,
                            a_params=list(na.parameters()), b_params=list(sa.parameters()))
            assert err <= TOL[dtype], (seed, path, err)


def dense_window_attention(layer, x):
    """The layer written out densely: softmax of the masked score matrix, the window from the brute force."""
    sel, comb = layer.selector, layer.combiner
    b, c = x.shape[:2]
    spatial = x.shape[2:]
    n, h = math.prod(spatial), sel.num_heads

    def heads(t):  # (B, C', *spatial) -> (B, H, N, C'/H)
        return t.reshape(b, h, -1, n).transpose(-1, -2)

    q, k, v = heads(sel.query(x)), heads(sel.key(x)), heads(comb.value(x))
    mask = torch.zeros(n, n, dtype=torch.bool)
    for query, keys in enumerate(neighborhood_window_index(tuple(spatial), sel.kernel_size, sel.dilation)):
        mask[query, keys] = True
    scores = (q @ k.transpose(-1, -2) * sel.scale).masked_fill(~mask, float("-inf"))
    y = scores.softmax(-1) @ v  # (B, H, N, d)
    return comb.output(y.transpose(-1, -2).reshape(b, -1, *spatial))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cls, shape, kwargs", [
    (NeighborhoodAttention2d, (2, 4, 6, 7), dict(num_heads=2, kernel_size=3)),
    (NeighborhoodAttention2d, (2, 6, 9, 8), dict(num_heads=3, kernel_size=(3, 2), dilation=(2, 3))),
    (NeighborhoodAttention2d, (1, 4, 5, 5), dict(num_heads=1, kernel_size=4)),
    (NeighborhoodAttention1d, (3, 4, 13), dict(num_heads=2, kernel_size=5, dilation=2)),
    (NeighborhoodAttention3d, (2, 4, 4, 5, 6), dict(num_heads=2, kernel_size=(2, 3, 3), dilation=(2, 1, 2))),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_equals_dense_softmax_over_the_window(cls, shape, kwargs, dtype):
    for seed in range(2):
        generator = torch.Generator().manual_seed(seed)
        layer = randomize(cls(shape[1], dtype=dtype, **kwargs), generator)
        x = torch.randn(*shape, generator=generator, dtype=dtype, requires_grad=True)
        for path in PATHS:
            err = max_error(lambda: layer(x, path=path), lambda: dense_window_attention(layer, x),
                            [x, *layer.parameters()], generator)
            assert err <= TOL[dtype], (seed, path, err)


def test_every_query_weighs_exactly_its_window():
    layer = operators.create("neighborhood_attention2d", in_channels=4, num_heads=2, kernel_size=3).double()
    nbhd = layer.neighborhood(torch.randn(1, 4, 6, 5, dtype=torch.float64))
    corner = nbhd.query_map((0, 0))  # shifted inward: the top-left 3x3 block, not a padded window
    assert torch.count_nonzero(corner) == 9 and torch.count_nonzero(corner[:3, :3]) == 9
    torch.testing.assert_close(corner.sum(), torch.tensor(1.0, dtype=torch.float64))
    inner = nbhd.query_map((3, 2))
    assert torch.count_nonzero(inner[2:5, 1:4]) == 9 and torch.count_nonzero(inner) == 9


def test_gradcheck_reference_path():
    torch.manual_seed(0)
    layer = NeighborhoodAttention2d(4, 2, (3, 2), dilation=(1, 2), dtype=torch.float64)
    x = torch.randn(1, 4, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t, path="reference"), (x,))


def test_state_dict_loads_both_ways_and_names_match():
    na = NeighborhoodAttention2d(8, 2, 3)
    sa = SelfAttention2d(8, 2)
    assert list(na.state_dict()) == list(sa.state_dict())
    na.load_state_dict(sa.state_dict())
    sa.load_state_dict(na.state_dict())


def test_large_inputs_take_the_reference_path():
    layer = operators.create("neighborhood_attention2d", in_channels=4, kernel_size=3)
    assert layer.fast_path_name(torch.randn(1, 4, 8, 8)) == "F.scaled_dot_product_attention"
    reason = layer.why_not_fast(torch.randn(1, 4, 64, 64))
    assert reason is not None and "N=4096" in reason
    assert layer.fast_path_name(torch.randn(1, 4, 64, 64)) is None


@pytest.mark.parametrize("build, x, error, words", [
    (lambda: NeighborhoodAttention2d(4, 1, 5), torch.randn(1, 4, 4, 9), ValueError, "kernel_size"),
    (lambda: NeighborhoodAttention2d(4, 1, 3, dilation=2), torch.randn(1, 4, 5, 9), ValueError, "dilation"),
    (lambda: NeighborhoodAttention1d(4, 1, 3), torch.randn(1, 4, 5, 5), ValueError, "3 dimensions"),
])
def test_bad_input_is_named(build, x, error, words):
    layer = build()
    for path in PATHS:
        with pytest.raises(error, match=words):
            layer(x, path=path)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(in_channels=6, num_heads=4, kernel_size=3), ValueError, "divisible by num_heads"),
    (dict(in_channels=4, num_heads=1, kernel_size=0), ValueError, "kernel_size"),
    (dict(in_channels=4, num_heads=1, kernel_size=(3, 3, 3)), ValueError, "kernel_size must have 2 entries"),
    (dict(in_channels=4, num_heads=1, kernel_size=3, dilation=0), ValueError, "dilation"),
    (dict(in_channels=4, num_heads=1, kernel_size=3, identity_projections=1), TypeError, "identity_projections"),
])
def test_bad_construction_is_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        NeighborhoodAttention2d(**kwargs)
