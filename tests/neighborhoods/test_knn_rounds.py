"""The C rounds of continuous k-NN (knn_rounds.c) against the op-by-op torch rounds.

Two independent computations of Ploetz & Roth 2018, Eqs. 8-10: ``native.knn_rounds_forward``
/ ``knn_rounds_backward`` (one C pass per row) and ``_rounds`` differentiated by autograd, on
random scores: rows long enough to run on several threads, masked (-inf) candidates, taken
candidates (a weight of exactly 1), scalar and per-row temperatures, both updates; NaN rows
stay NaN the way the torch route's do. float64 to 1e-12 and float32 to 1e-5 of the largest
entry. (test_continuous_knn_backward.py runs its whole suite through both routes as well.)
"""

import importlib

import pytest
import torch

from neighborhoods.functional import native

module = importlib.import_module("neighborhoods.functional.continuous_knn")
pytestmark = pytest.mark.skipif(native._compiler() is None, reason="no C compiler on the PATH: the C rounds "
                                "cannot be built here and the library runs its torch path")
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def torch_route(logits, t, k, by_t, up):
    logits = logits.detach().clone().requires_grad_()
    t = t.detach().clone().requires_grad_()
    w = module._rounds(logits, t, k, by_t)
    g = torch.autograd.grad(w, (logits, t), up, allow_unused=True)
    return w.detach(), g[0], g[1]  # g[1] is None where the rounds do not read t (the 'logits' update)


def close(a, b, dtype):
    torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype] * max(1.0, b.abs().max().item()), equal_nan=True)


@pytest.mark.parametrize("shape, k", [((2, 3, 5), 5), ((64, 9, 8), 3), ((4, 300, 80), 7), ((1, 2, 700), 9)])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("update", ["scores", "logits"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_c_rounds_equal_autograd_of_the_torch_rounds(shape, k, per_row, update, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.rand(shape[:-1] if per_row else (), generator=g, dtype=torch.float64) + 0.5
    t = t.unsqueeze(-1) if per_row else t
    masked = torch.rand(shape, generator=g) < 0.2
    masked[..., :k] = False
    scores[..., 1] += 60 * (t if per_row else t.reshape(1))[..., 0] if seed else 0.0  # seed 1: candidates taken
    logits = (scores / t).masked_fill(masked, float("-inf")).to(dtype)
    t = t.to(dtype)
    up = torch.randn(*shape, k, generator=g, dtype=torch.float64).to(dtype)
    by_t = update == "scores"
    w, log_w = native.knn_rounds_forward(logits, t, k, by_t)
    g_logits, g_t = native.knn_rounds_backward(up, w, log_w, t, by_t, True)
    want_w, want_logits, want_t = torch_route(logits, t, k, by_t, up)
    close(w, want_w, dtype)
    close(g_logits, want_logits, dtype)
    if want_t is None:
        assert g_t is None and update == "logits"
    else:
        close(g_t, want_t, dtype)
        assert g_t.shape == t.shape
    assert torch.isfinite(w).all() and torch.isfinite(g_logits).all()
    torch.testing.assert_close(w.sum(-2), torch.ones(*shape[:-1], k, dtype=dtype), rtol=0, atol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_nan_and_inf_rows_stay_as_the_torch_route_leaves_them(dtype):
    logits = torch.randn(5, 6, dtype=dtype)
    logits[1, 2] = float("nan")
    logits[2] = float("-inf")
    logits[3, 0] = float("inf")
    t = torch.tensor(0.7, dtype=dtype)
    up = torch.randn(5, 6, 3, dtype=dtype)
    w, log_w = native.knn_rounds_forward(logits, t, 3, True)
    g_logits, _ = native.knn_rounds_backward(up, w, log_w, t, True, False)
    want_w, want_logits, _ = torch_route(logits, t, 3, True, up)
    assert torch.equal(w.isnan(), want_w.isnan())
    assert w[1:4].isnan().all() and not w[[0, 4]].isnan().any()
    close(w, want_w, dtype)
    assert torch.equal(g_logits[[0, 4]].isnan(), want_logits[[0, 4]].isnan())
    close(g_logits[[0, 4]], want_logits[[0, 4]], dtype)


def test_shapes_and_dtypes_the_kernel_does_not_take_return_none():
    logits = torch.randn(4, 5)
    assert native.knn_rounds_forward(logits.half(), torch.tensor(1.0).half(), 2, True) is None
    assert native.knn_rounds_forward(logits, torch.tensor(1.0, dtype=torch.float64), 2, True) is None
    assert native.knn_rounds_forward(logits, torch.ones(3, 1), 2, True) is None  # neither shared nor per row
    w, log_w = native.knn_rounds_forward(logits.t().contiguous().t(), torch.ones(4, 1), 2, True)  # strided: copied
    close(w, torch_route(logits, torch.ones(4, 1), 2, True, torch.zeros(4, 5, 2))[0], torch.float32)


def test_continuous_knn_takes_the_c_rounds_without_grad_too():
    scores = torch.randn(3, 4, 6, dtype=torch.float64)
    t = torch.rand(3, 4, dtype=torch.float64) + 0.5
    got = module.continuous_knn(scores, 3, t)
    close(got, module._rounds(scores / t.unsqueeze(-1), t.unsqueeze(-1), 3, True), torch.float64)


@pytest.mark.parametrize("update", ["scores", "logits"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_takes_a_candidate_when_its_weight_rounds_to_one_as_the_torch_rounds_do(update, seed):
    # one candidate 30 logits ahead: its float32 weight is exactly 1 (the rest sum to ~1e-10 or less,
    # below half a float32 ulp of 1), so the torch rounds take it (next logit -inf). In double
    # precision it would stay, ~23 logits lower, and under the 'logits' update still lead the next
    # round: the C rounds keep float32 rows at float precision between the steps, and take it too
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(64, 9, 8, generator=g)
    logits[..., 3] += 30.0
    t = torch.ones(64, 9, 1)
    by_t = update == "scores"
    w, _ = native.knn_rounds_forward(logits, t, 3, by_t)
    want = module._rounds(logits, t, 3, by_t)
    assert torch.equal(want[..., 3, 0], torch.ones(64, 9)) and torch.equal(want[..., 3, 1:], torch.zeros(64, 9, 2))
    assert torch.equal(w[..., 3, 1:], torch.zeros(64, 9, 2))
    close(w, want, torch.float32)
