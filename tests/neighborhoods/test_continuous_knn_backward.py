"""continuous_knn's written-out backward (_Rounds) equals autograd of the op-by-op rounds.

Two computations of the same derivatives: the hand-written backward of ``_Rounds`` against
autograd through ``_rounds``, op by op, on the same inputs: random scores, masked candidates,
per-query and scalar temperatures, both updates, and candidates far enough ahead that their
weight rounds to exactly 1 (taken: the next logit is -inf, the gradient zero). The forward runs
the same ops, so it is compared bitwise; gradients to 1e-12 (float64) relative to the largest;
in float32 both backwards are measured against the float64 one, and the written one may not be
worse. gradcheck and gradgradcheck (double backward goes through the op-by-op rounds) in float64.

Every case runs twice: with ``_Rounds``'s torch forward and written backward (the C kernels
switched off), and with the C rounds of ``knn_rounds.c`` (both directions). The C forward does
the same arithmetic in another summation order, so it is compared to 1e-12 (float64) / 1e-5
(float32) of the largest weight instead of bitwise.
"""

import importlib

import pytest
import torch

from neighborhoods.functional import native
from neighborhoods.functional.continuous_knn import continuous_knn

module = importlib.import_module("neighborhoods.functional.continuous_knn")  # the package exports the function by that name

# of the gradient's scale. The inputs are kept well conditioned: where a weight is within ~1e-12 of
# 1 without rounding to it, d log(1 - w) = -dw / (1 - w) cancels beyond float64's precision and
# no two orders of evaluation agree (nor need to: that weight has all but left the candidates)
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.fixture(params=["torch", "c"], autouse=True)
def route(request, monkeypatch):
    """Which rounds ``continuous_knn`` runs: ``_Rounds``'s torch ops, or the C kernels (knn_rounds.c)."""
    if request.param == "torch":
        monkeypatch.setattr(module, "knn_rounds_forward", lambda *args: None)
        monkeypatch.setattr(module, "knn_rounds_backward", lambda *args: None)
    elif native.native_reason() is not None:
        pytest.skip(f"the C kernels do not build here ({native.native_reason()}): only the torch route runs")
    return request.param


def both(scores, t, k, update, mask):
    fused = continuous_knn(scores, k, t, mask=mask, update=update)
    by_t = update == "scores"
    logits = scores / (t.unsqueeze(-1) if t.ndim else t)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    plain = module._rounds(logits, t.unsqueeze(-1) if t.ndim else t, k, by_t)
    return fused, plain


def case(shape, k, per_query, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.rand(shape[:-1] if per_query else (), generator=g, dtype=torch.float64) + 0.5
    mask = torch.rand(shape, generator=g) > 0.25
    mask[..., :k] = True
    if seed == 2:
        # a candidate 80 temperatures above the rest: its first weight rounds to exactly 1 and it
        # is taken (its next logit is -inf, no gradient through its log(1 - w)); the rest of the
        # row stays well conditioned
        scores[..., 0] += 80 * t
    up = torch.randn(*shape, k, generator=g, dtype=torch.float64)
    return scores.to(dtype).requires_grad_(), t.to(dtype).requires_grad_(), mask, up.to(dtype)


def grads(shape, k, update, per_query, seed, dtype, route="torch"):
    scores, t, mask, up = case(shape, k, per_query, seed, dtype)
    fused, plain = both(scores, t, k, update, mask)
    if route == "torch":
        assert torch.equal(fused, plain)  # the same forward ops
    else:  # the same arithmetic, summed in another order
        torch.testing.assert_close(fused, plain, rtol=0, atol=TOL[dtype])
    assert type(fused.grad_fn).__name__ == "_RoundsBackward"
    return torch.autograd.grad(fused, (scores, t), up), torch.autograd.grad(plain, (scores, t), up)


SHAPES = [((4, 9, 8), 3), ((2, 16, 5), 5), ((3, 1, 12), 7), ((64, 9, 8), 1)]


def every_case(test):
    """Shapes, both updates, scalar and per-query temperatures, three seeds (seed 2 takes candidates)."""
    for name, values in (("seed", [0, 1, 2]), ("per_query", [False, True]), ("update", ["scores", "logits"]),
                         ("shape, k", SHAPES)):
        test = pytest.mark.parametrize(name, values)(test)
    return test


@every_case
def test_written_backward_equals_autograd_of_the_rounds_float64(shape, k, update, per_query, seed, route):
    got, want = grads(shape, k, update, per_query, seed, torch.float64, route)
    for a, b in zip(got, want):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=TOL[torch.float64] * max(1.0, b.abs().max().item()))


@every_case
def test_written_backward_is_as_accurate_as_autograd_in_float32(shape, k, update, per_query, seed, route):
    # the rounds are ill-conditioned where a weight nears 1 (d log(1 - w) = -dw / (1 - w)): both
    # float32 backwards are measured against the float64 one, and the written one may not be worse
    # than 4x autograd's error (or 1e-5 of the gradient's scale)
    got, want = grads(shape, k, update, per_query, seed, torch.float32, route)
    truth = grads(shape, k, update, per_query, seed, torch.float64, route)[1]
    for a, b, ref in zip(got, want, truth):
        assert torch.isfinite(a).all()
        scale = max(1.0, ref.abs().max().item())
        err_written = (a.double() - ref).abs().max().item()
        err_autograd = (b.double() - ref).abs().max().item()
        assert err_written <= 4 * max(err_autograd, TOL[torch.float32] * scale), (err_written, err_autograd)


@pytest.mark.parametrize("update", ["scores", "logits"])
def test_gradcheck_and_double_backward(update):
    g = torch.Generator().manual_seed(5)
    scores = torch.randn(3, 4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    mask = torch.rand(3, 4, 6, generator=g) > 0.3
    mask[..., :3] = True

    def f(s, t):
        return continuous_knn(s, 3, t, mask=mask, update=update)

    assert torch.autograd.gradcheck(f, (scores, t))
    assert torch.autograd.gradgradcheck(f, (scores, t))


def test_no_grad_and_transforms_take_the_op_by_op_rounds():
    scores = torch.randn(2, 3, 5, requires_grad=True)
    with torch.no_grad():
        assert continuous_knn(scores, 2, 1.0).grad_fn is None
    out = torch.func.vmap(lambda s: continuous_knn(s, 2, 1.0))(scores)
    assert type(out.grad_fn).__name__ != "_RoundsBackward"
    torch.testing.assert_close(out, continuous_knn(scores, 2, 1.0))
