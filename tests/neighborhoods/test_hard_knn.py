"""HardKNN: spatial k-NN is a convolution; sampling, padding and slot conventions."""

import pytest
import torch
import torch.nn.functional as F

from neighborhoods.combiners import Conv1D
from neighborhoods.functional import grid_coordinates
from neighborhoods.selectors import HardKNN

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def kernel_taps(nbhd, spatial, radius):
    """Kernel tap (row-major in the (2r+1)^2 window) of every slot of every interior query.

    Derived from the chosen tokens' image positions, so a selection that is not the same
    window in the same order for every query shows up as differing rows.
    """
    h, w = spatial
    q = torch.arange(h * w)
    qr, qc = q // w, q % w
    interior = (qr >= radius) & (qr < h - radius) & (qc >= radius) & (qc < w - radius)
    idx = nbhd.index[0][interior]  # (q, k)
    dr = idx // w - qr[interior, None]
    dc = idx % w - qc[interior, None]
    return (dr + radius) * (2 * radius + 1) + (dc + radius)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("metric, width, order", [
    ("chebyshev", 1, "index"), ("chebyshev", 3, "index"), ("chebyshev", 5, "index"), ("chebyshev", 7, "index"),
    ("chebyshev", 3, "score"), ("euclidean", 3, "score"), ("euclidean", 5, "score"), ("euclidean", 5, "index"),
])
@pytest.mark.parametrize("spatial", [(9, 10), (8, 7)])
def test_spatial_knn_equals_conv2d(metric, width, order, spatial, dtype):
    r = width // 2
    selector = HardKNN(width * width, space="positions", metric=metric, padding=r, self_first=False, order=order)
    combiner = Conv1D(3, 5, width * width, dtype=dtype)
    x = torch.randn(2, 3, *spatial, dtype=dtype, requires_grad=True)
    nbhd = selector(x)
    taps = kernel_taps(nbhd, spatial, r)
    assert (taps == taps[0]).all(), "every query must see the same window in the same slot order"
    slot_of_tap = torch.argsort(taps[0])
    out = combiner(x, nbhd)
    ref = F.conv2d(x, combiner.weight[..., slot_of_tap].reshape(5, 3, width, width), combiner.bias, padding=r)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    wrt = [x, combiner.weight, combiner.bias]
    for a, b in zip(torch.autograd.grad(out, wrt, cot), torch.autograd.grad(ref, wrt, cot)):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype])
    if order == "index":
        assert torch.equal(slot_of_tap, torch.arange(width * width))


@pytest.mark.parametrize("space", ["features", "hybrid"])
def test_self_in_slot_zero_and_others_distinct(space):
    x = torch.randn(2, 4, 5, 6)
    idx = HardKNN(7, space=space, metric="euclidean")(x).index
    assert torch.equal(idx[..., 0], torch.arange(30).expand(2, 30))
    assert (idx[..., 1:] != idx[..., :1]).all()
    assert all(len(set(row)) == 7 for row in idx.reshape(-1, 7).tolist())


def test_random_sampling_is_seeded_and_fresh_per_forward():
    x = torch.randn(1, 3, 6, 6)
    a, b = HardKNN(4, sampling="random", samples=10, seed=7), HardKNN(4, sampling="random", samples=10, seed=7)
    first_a, first_b = a(x).index, b(x).index
    assert torch.equal(first_a, first_b)  # reproducible
    draws = [a.candidates((6, 6)) for _ in range(3)]
    assert not all(torch.equal(draws[0], d) for d in draws[1:])  # one new set per forward
    c = HardKNN(4, sampling="random", samples=10, seed=7)
    pool = c.candidates((6, 6))
    idx = HardKNN(4, sampling="random", samples=10, seed=7)(x).index[0]
    assert torch.equal(idx[:, 0], torch.arange(36))  # self first, even when it was not drawn
    assert torch.isin(idx[:, 1:], pool).all()  # the others come from the draw only
    assert pool.numel() == 10 and pool.unique().numel() == 10


def test_spatial_sampling_takes_an_evenly_spaced_subgrid():
    sel = HardKNN(5, sampling="spatial", samples=3)
    pool = sel.candidates((7, 9))
    rows, cols = pool // 9, pool % 9
    assert sorted(set(rows.tolist())) == [0, 3, 6] and sorted(set(cols.tolist())) == [0, 4, 8]
    idx = sel(torch.randn(2, 3, 7, 9)).index
    assert torch.isin(idx[..., 1:], pool).all()
    assert torch.equal(idx[..., 0], torch.arange(63).expand(2, 63))


def test_padding_tokens_are_candidates_and_read_as_zero():
    # one bright channel: a token near zero is closer to the zero padding tokens than to the image
    x = torch.full((1, 1, 4, 4), 5.0)
    x[0, 0, 0, 0] = 0.01
    nbhd = HardKNN(3, metric="euclidean", padding=1)(x)
    assert nbhd.valid is not None
    assert not nbhd.valid[0, 0, 1:].any()  # token 0 picked two padding tokens
    assert nbhd.valid[0, 1:, :].all()  # the others stay inside
    slots = nbhd.aggregate(x.flatten(2).transpose(1, 2))
    assert (slots[0, 0, 1:] == 0).all()


def test_positions_one_dimensional_window():
    sel = HardKNN(5, space="positions", metric="chebyshev", ndim=1, padding=2, self_first=False, order="index")
    nbhd = sel(torch.randn(2, 3, 9))
    q = torch.arange(9)
    window = q[:, None] + torch.arange(-2, 3)
    inside = (window >= 0) & (window < 9)
    assert torch.equal(nbhd.valid[0], inside)
    assert torch.equal(nbhd.index[0][inside], window[inside])


def test_any_input_size_on_every_call_and_no_gradient_through_selection():
    sel = HardKNN(4, space="hybrid")
    for shape in [(1, 2, 3, 4), (2, 2, 7, 5), (1, 2, 4, 3)]:
        x = torch.randn(*shape, requires_grad=True)
        nbhd = sel(x)
        assert nbhd.index.shape == (shape[0], shape[2] * shape[3], 4) and nbhd.query_shape == shape[2:]
        assert not nbhd.index.requires_grad


def test_hybrid_lambda_interpolates_between_positions_and_features():
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    positions = HardKNN(5, space="positions", metric="euclidean")(x).index
    features = HardKNN(5, space="features", metric="euclidean")(x).index
    # lambda = 0: coordinates only; equidistant tokens may tie differently (the hybrid space
    # is not exact), so compare the distances of what was picked
    hybrid0 = HardKNN(5, space="hybrid", metric="euclidean", hybrid_lambda=0.0)(x).index

    def sq_dist(idx):
        q = torch.arange(36).view(1, 36, 1)
        return ((idx // 6 - q // 6) ** 2 + (idx % 6 - q % 6) ** 2).sort(-1).values

    assert torch.equal(sq_dist(hybrid0), sq_dist(positions))
    # lambda = 1: standardised features; euclidean k-NN ignores a per-channel shift but not the scale,
    # so compare with features standardised in the test
    z = (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), correction=0, keepdim=True)
    assert torch.equal(HardKNN(5, space="hybrid", metric="euclidean", hybrid_lambda=1.0)(x).index,
                       HardKNN(5, space="features", metric="euclidean")(z).index)
    assert not torch.equal(positions, features)


def test_block_size_does_not_change_the_selection():
    x = torch.randn(2, 3, 6, 7)
    ref = HardKNN(6, block_size=1024)(x).index
    for bs in (1, 7, 42):
        assert torch.equal(HardKNN(6, block_size=bs)(x).index, ref)


def test_grid_coordinates_isotropic_reference():
    # the hybrid space uses grid_coordinates: longest axis spans [-1, 1] with one spacing
    c = grid_coordinates((3, 5))
    assert torch.allclose(c[:, 1].unique(), torch.linspace(-1, 1, 5))
    assert torch.allclose(c[:, 0].unique(), torch.tensor([-0.5, 0.0, 0.5]))
