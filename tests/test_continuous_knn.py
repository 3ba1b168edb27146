"""continuous_knn (Ploetz & Roth 2018, Eqs. 8-10): theorems, stability, properties, bad input."""

import math

import pytest
import torch

from comparisons.theorems import THEOREMS, verify
from comparisons.theorems.n3 import knn_weights_by_loop
from neighborhoods.functional import continuous_knn, log1mexp

THEOREM_NAMES = ["continuous_knn==loop", "continuous_knn.k1==softmax", "continuous_knn.t->0==hard_topk"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", THEOREM_NAMES)
def test_theorems(name, seed, dtype):
    verdict = verify(THEOREMS[name], seed, dtype)
    assert verdict.passed, [(t.shapes, t.error) for t in verdict.trials if not t.error <= verdict.tolerance]


def test_gradcheck_scores_and_temperature():
    s = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 2, dtype=torch.float64) + 0.3).requires_grad_()
    mask = torch.ones(2, 2, 5, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 0, 0] = False
    assert torch.autograd.gradcheck(lambda s, t: continuous_knn(s, 3, t, mask=mask), (s, t))
    t0 = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, t: continuous_knn(s, 5, t, update="logits"), (s, t0))


# the stable range measured here: no NaN/inf in weights or gradients, weights sum to 1
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [1e-4, 1e-3, 1e-1, 1.0, 1e2, 1e4])
@pytest.mark.parametrize("update", ["scores", "logits"])
def test_stable_over_temperatures_k_up_to_candidates_and_masks(t, dtype, update):
    g = torch.Generator().manual_seed(0)
    s = (torch.randn(40, 12, generator=g, dtype=dtype) * 5).requires_grad_()
    s_tied = torch.zeros(4, 12, dtype=dtype, requires_grad=True)  # exact ties
    mask = torch.rand(40, 12, generator=g) < 0.6
    mask[:, :5] = True
    temp = torch.full((40,), t, dtype=dtype, requires_grad=True)
    for w in (continuous_knn(s, 12, temp, update=update), continuous_knn(s, 5, temp, mask=mask, update=update),
              continuous_knn(s_tied, 12, t, update=update)):
        assert torch.isfinite(w).all()
        torch.testing.assert_close(w.sum(-2), torch.ones_like(w.sum(-2)), rtol=0, atol=1e-5)
        (w * torch.randn(w.shape, generator=g, dtype=dtype)).sum().backward()
    for grad in (s.grad, temp.grad, s_tied.grad):
        assert torch.isfinite(grad).all()
    masked_weight = continuous_knn(s, 5, temp, mask=mask, update=update).detach()
    assert (masked_weight[~mask] == 0).all()


def test_log1mexp_exact_near_zero_and_far():
    a = torch.tensor([-1e-300, -1e-20, -1e-8, math.log(0.5), -1.0, -50.0, -800.0, 0.0, -math.inf],
                     dtype=torch.float64, requires_grad=True)
    expected = torch.tensor([math.log(1e-300), math.log(1e-20), math.log(-math.expm1(-1e-8)), math.log(0.5),
                             math.log1p(-math.exp(-1.0)), math.log1p(-math.exp(-50.0)), 0.0, -math.inf, 0.0],
                            dtype=torch.float64)
    y = log1mexp(a)
    torch.testing.assert_close(y, expected, rtol=1e-15, atol=0)
    y[torch.isfinite(y)].sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad[-2] == 0  # a == 0: -inf with a zero gradient


def test_logits_update_is_the_public_code_recursion():
    # logits_{j+1} = logits_j + log(1 - w_j): at t = 1 it coincides with Eq. 9; at t != 1 it does not
    g = torch.Generator().manual_seed(3)
    s = torch.randn(5, 7, generator=g, dtype=torch.float64)
    logits, cols = s / 0.3, []
    for _ in range(3):
        w = torch.softmax(logits, -1)
        cols.append(w)
        logits = logits + torch.log(1 - w)
    torch.testing.assert_close(continuous_knn(s, 3, 0.3, update="logits"), torch.stack(cols, -1), rtol=0, atol=1e-12)
    torch.testing.assert_close(continuous_knn(s, 3, 1.0, update="logits"), knn_weights_by_loop(s, 3, torch.tensor(1.0)),
                               rtol=0, atol=1e-12)
    assert (continuous_knn(s, 3, 0.3) - continuous_knn(s, 3, 0.3, update="logits")).abs().max() > 1e-3


def test_candidate_total_can_exceed_one():
    # Not a bound of the relaxation: once w_1 is ~one-hot on candidate 0 at t = 1, Eq. 9 moves its
    # score to log-sum-exp of the others, so w_2 gives it 1/2 and its total weight is 3/2.
    s = torch.tensor([20.0, 0.0], dtype=torch.float64)  # w_1[0] = 1 - 2e-9, not yet rounded to 1
    w = continuous_knn(s, 2, 1.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, 0.5], [0.0, 0.5]], dtype=torch.float64), rtol=0, atol=1e-8)
    # ... while in the hard limit each candidate's total is at most 1
    s = torch.randn(50, 9, dtype=torch.float64).argsort(-1).double() * 0.05
    assert continuous_knn(s, 9, 1e-3).sum(-1).max() <= 1 + 1e-12


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, torch.tensor(0.0), torch.tensor([1.0, -2.0]),
                                 torch.tensor([1.0, math.nan])])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        continuous_knn(torch.randn(2, 5), 2, bad)


def test_bad_arguments():
    s = torch.randn(2, 5)
    with pytest.raises(ValueError, match="temperature must be a scalar or have one entry per query"):
        continuous_knn(s, 2, torch.ones(5))
    with pytest.raises(TypeError, match="temperature"):
        continuous_knn(s, 2, "hot")
    with pytest.raises(ValueError, match=r"k must be <= the number of candidates, got k=6, candidates=5"):
        continuous_knn(s, 6)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, :3] = False
    with pytest.raises(ValueError, match=r"got k=3, candidates=2"):
        continuous_knn(s, 3, mask=mask)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        continuous_knn(s, 2, mask=torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="update must be one of"):
        continuous_knn(s, 2, update="fast")
    with pytest.raises(ValueError, match="k must be >= 1"):
        continuous_knn(s, 0)
