"""The blocked gather-linear is ``F.linear`` of the gathered rows, and ConvNN's fast path takes it.

``gather_linear`` against the direct form (``index_select`` of every row, one ``F.linear``) on
random rows, several shapes (fewer queries than a block, several blocks with a short last one,
no bias, repeated rows) and seeds: outputs and the gradients of the rows, the weight and the
bias, float64 to 1e-12 and float32 to 1e-5 of each tensor's largest entry (the products run per
block, so float32 round-off differs); gradcheck and gradgradcheck in float64. The ConvNN2d fast
path with and without it, outputs and every gradient.
"""

import sys

import pytest
import torch

import operators
from neighborhoods.functional import gather_linear as gl

hard_knn = sys.modules["neighborhoods.fast_paths.hard_knn"]

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
# (rows N, channels C, k, queries, C_out, bias): one partial block; three blocks, the last short; no bias;
# queries reading a few rows many times (the weight's gradient sums many equal terms)
CASES = [(50, 3, 2, 40, 4, True), (600, 8, 9, 2 * gl.BLOCK_ROWS + 37, 5, True), (90, 4, 3, 1500, 6, False),
         (5, 2, 4, 1200, 3, True)]


def _case(case, dtype, seed):
    n, c, k, q, o, bias = case
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n, c, dtype=dtype, generator=g)
    index = torch.randint(0, n, (q * k,), generator=g)
    weight = torch.randn(o, k * c, dtype=dtype, generator=g)
    return values, index, weight, (torch.randn(o, dtype=dtype, generator=g) if bias else None)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", CASES)
def test_gather_linear_matches_the_direct_form(case, seed, dtype):
    values, index, weight, bias = _case(case, dtype, seed)
    params = [t.requires_grad_() for t in (values, weight, bias) if t is not None]
    ours = gl.gather_linear(values, index, weight, bias)
    ref = gl.gather_linear_direct(values, index, weight, bias)
    grad = torch.randn_like(ref)
    for a, b in zip([ours, *torch.autograd.grad(ours, params, grad)], [ref, *torch.autograd.grad(ref, params, grad)]):
        assert a.shape == b.shape and (a - b).abs().max() <= TOL[dtype] * b.abs().max()


def test_gather_linear_gradcheck(monkeypatch):
    monkeypatch.setattr(gl, "BLOCK_ROWS", 3)  # several blocks on a gradcheck-sized problem
    values, index, weight, bias = _case((6, 2, 3, 7, 2, True), torch.float64, 0)
    args = [t.requires_grad_() for t in (values, weight, bias)]
    fn = lambda v, w, b: gl.gather_linear(v, index, w, b)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


def test_gather_linear_of_no_queries():
    values, _, weight, bias = _case((10, 3, 2, 4, 5, True), torch.float64, 0)
    values.requires_grad_()
    y = gl.gather_linear(values, torch.zeros(0, dtype=torch.long), weight, bias)
    assert y.shape == (0, 5)
    (g,) = torch.autograd.grad(y.sum(), values)
    assert torch.equal(g, torch.zeros_like(values))


def test_gather_linear_names_bad_shapes():
    values, index, weight, _ = _case((10, 3, 2, 4, 5, False), torch.float64, 0)
    with pytest.raises(ValueError, match="gather_linear needs values"):
        gl.gather_linear(values, index, weight[:, :5])
    with pytest.raises(ValueError, match="index must hold k = 2 rows per query"):
        gl.gather_linear(values, index[:-1], weight)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kwargs", [dict(k=4), dict(k=3, bias=False), dict(k=5, sampling="random", samples=20), dict(k=3, similarity="euclidean", stride=2)])
def test_convnn_fast_path_with_gather_linear(kwargs, dtype, monkeypatch):
    torch.manual_seed(0)
    layer = operators.create("conv_nn2d", in_channels=5, out_channels=6, **kwargs).to(dtype)
    x = torch.randn(3, 5, 9, 11, dtype=dtype)
    monkeypatch.setattr(hard_knn, "BLOCKED_MIN_ELEMENTS", 0)  # the blockwise route on a small input
    calls = []
    real = hard_knn.gather_linear
    monkeypatch.setattr(hard_knn, "gather_linear", lambda *a: calls.append(1) or real(*a))
    runs = []
    for blocked in (True, False):
        if not blocked:
            monkeypatch.setattr(hard_knn, "under_transform", lambda *a: True)  # the gather-then-linear route
        torch.manual_seed(1)  # the same random candidates in both runs
        xx = x.clone().requires_grad_()
        y = layer(xx, path="fast")
        runs.append([y, *torch.autograd.grad(y.square().sum(), [xx, *layer.parameters()])])
    assert len(calls) == 1
    for a, b in zip(*runs):
        assert (a - b).abs().max() <= TOL[dtype] * b.abs().max()


def test_small_convnn_inputs_keep_the_whole_gather(monkeypatch):
    layer = operators.create("conv_nn2d", in_channels=4, out_channels=4, k=3)
    monkeypatch.setattr(hard_knn, "gather_linear", lambda *a: pytest.fail("blockwise route on a small input"))
    x = torch.randn(2, 4, 6, 6)
    assert 2 * 36 * 3 * 4 < hard_knn.BLOCKED_MIN_ELEMENTS
    assert layer(x, path="fast").shape == (2, 4, 6, 6)
