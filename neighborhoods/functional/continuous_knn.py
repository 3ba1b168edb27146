"""Continuous (differentiable) k-nearest-neighbour weights: Ploetz & Roth 2018, Eqs. 8-10.

Axis legend: ``...`` leading axes (batch, queries), ``m`` candidates, ``k`` neighbours.

The first weight vector is a softmax of the scores over the temperature (Eq. 8); each
further one is a softmax of scores from which the previous weights have been "removed" by
adding ``log(1 - w)`` (Eq. 9, the expected version of setting a sampled index to -inf).
As ``t -> 0`` the k weight vectors become the one-hot indicators of the k best candidates.

Numerics. ``log(1 - w)`` is computed from ``log w`` (a log-softmax) with the two-branch
``log1mexp`` (``log1p(-exp(a))`` below ``log 1/2``, ``log(-expm1(a))`` above), so it stays
exact as ``w -> 1``. When ``w`` rounds to exactly 1 the candidate's next logit is set to
``-inf`` (it has been taken), with a zero gradient through that branch instead of
``0 * inf``. Candidates that are masked out are ``-inf`` from the start.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_int, check_tensor
from .native import knn_rounds_backward, knn_rounds_forward
from .softmax import SHORT_AXIS, log_softmax_last
from .stages import stage
from .transforms import under_transform

LOG_HALF = math.log(0.5)
#: ``scores``: Eq. 9 as printed, alpha_{j+1} = alpha_j + log(1 - w_j), w = softmax(alpha / t)
#: (converges to hard k-NN as t -> 0). ``logits``: logits_{j+1} = logits_j + log(1 - w_j) with
#: logits = alpha / t, the update of the authors' public code; both agree at t = 1.
Update = Literal["scores", "logits"]
UPDATES: tuple[str, ...] = get_args(Update)


def log1mexp(a: Tensor) -> Tensor:
    """``log(1 - exp(a))`` for ``a <= 0``, exact over the whole range (Maechler 2012).

    ``a == 0`` gives ``-inf`` with a zero gradient; ``a == -inf`` gives 0. A positive or NaN
    entry (``1 - exp(a) < 0``: no real logarithm) is a ``ValueError``.
    """
    check_tensor("a", a)
    bad = ~(a <= 0)
    if not under_transform(a) and bool(bad.any()):  # a value check: eager only (see .transforms)
        raise ValueError(f"log1mexp needs a <= 0 everywhere (log of 1 - exp(a) > 0), got "
                         f"{a.detach()[bad].flatten()[:4].tolist()} among its values")
    return _log1mexp(a)


def exp_flushed(x: Tensor) -> Tensor:
    """``exp(x)``, 0 where it is at most four times the dtype's smallest normal number ``tiny``.

    x86 CPUs take a slow path for every exp whose result underflows. On a 2-core AMD EPYC,
    float32, ``exp`` of 403k numbers took 0.24 ms for inputs above ``log(tiny)`` (-87.3),
    2.0 ms for inputs below it (result 0) and 6.0 ms in the subnormal range between. After
    the first round most of N3's log-weights are far below -87. So the inputs are raised to
    ``log(2 tiny)`` first (whose exp is a normal number) and results up to ``4 tiny`` set to 0
    (``F.threshold``, which keeps NaN). A flushed weight is under ``4 tiny`` (4.7e-38 in
    float32, 8.9e-308 in float64), less than the products of the volumes keep anyway
    (:func:`~neighborhoods.functional.candidates.negligible`); its gradient is 0 too.
    """
    tiny = torch.finfo(x.dtype).tiny
    return F.threshold(torch.exp(x.clamp_min(math.log(2 * tiny))), 4 * tiny, 0.0)


def _log1mexp(a: Tensor) -> Tensor:
    """:func:`log1mexp` without the check (for log-softmax inputs, which are <= 0 by construction)."""
    low = a < LOG_HALF
    one = a >= 0
    # each branch only ever sees inputs where it is finite, so no 0 * inf in the backward pass
    lo = torch.log1p(-exp_flushed(torch.where(low, a, torch.full_like(a, LOG_HALF))))
    hi = torch.log(-torch.expm1(torch.where(low | one, torch.full_like(a, LOG_HALF), a)))
    return torch.where(one, torch.full_like(a, float("-inf")), torch.where(low, lo, hi))


def _temperature(temperature: float | Tensor, scores: Tensor) -> Tensor:
    """The temperature as a tensor broadcastable against ``scores`` ``(..., M)``."""
    if isinstance(temperature, Tensor):
        if not temperature.is_floating_point():
            raise TypeError(f"temperature must be a floating-point tensor, got dtype {temperature.dtype}")
        lead = tuple(scores.shape[:-1])
        if temperature.ndim != 0 and tuple(temperature.shape) != lead:
            raise ValueError(f"temperature must be a scalar or have one entry per query, shape {lead} "
                             f"(scores.shape[:-1]), got shape {tuple(temperature.shape)}")
        bad = ~torch.isfinite(temperature) | (temperature <= 0)
        if not under_transform(temperature) and bool(bad.any()):  # eager only, as above
            raise ValueError(f"temperature must be finite and > 0 everywhere, got "
                             f"{temperature.detach()[bad].flatten()[:4].tolist()} among its values")
        return temperature.to(scores.dtype).unsqueeze(-1) if temperature.ndim else temperature.to(scores.dtype)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a real number or a tensor, got {type(temperature).__name__}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be finite and > 0, got temperature={temperature}")
    return torch.tensor(float(temperature), dtype=scores.dtype, device=scores.device)


def continuous_knn(scores: Tensor, k: int, temperature: float | Tensor = 1.0, *, mask: Tensor | None = None,
                   update: str = "scores") -> Tensor:
    """Weights of the ``k`` continuous nearest neighbours (Ploetz & Roth 2018, Eqs. 8-10).

    ``w_1 = softmax(alpha_1 / t)`` with ``alpha_1 = scores`` (higher = nearer, e.g. negative
    distances, Eq. 4); ``alpha_{j+1} = alpha_j + log(1 - w_j)`` (Eq. 9);
    ``w_{j+1} = softmax(alpha_{j+1} / t)`` (Eq. 10). The neighbour volumes are then
    ``N_j = sum_m w_j[m] x_m`` (Eq. 11).

    Args:
        scores: ``(..., M)`` scores of M candidates per query; larger is nearer.
        k: neighbours, ``1 <= k <=`` the number of (unmasked) candidates.
        temperature: ``t > 0``: a number, a 0-d tensor, or a tensor of shape
            ``scores.shape[:-1]`` (one per query); tensors receive gradients.
        mask: ``(..., M)`` bool, ``True`` where a candidate may be chosen (SDPA's convention).
        update: ``'scores'`` (Eq. 9 as printed, default) or ``'logits'`` (add ``log(1 - w)``
            to ``alpha / t`` instead, as the authors' public code does; equal at ``t = 1``,
            but only ``'scores'`` tends to hard k-NN as ``t -> 0``), see :data:`UPDATES`.

    Returns:
        ``(..., M, k)``: column ``j`` is ``w_{j+1}``, a distribution over the candidates.

    Shape:
        scores: ``(..., M)`` -> ``(..., M, k)``.
    """
    check_tensor("scores", scores)
    if scores.ndim < 1:
        raise ValueError(f"scores must have at least 1 dimension (..., M), got shape {tuple(scores.shape)}")
    k = check_int("k", k, minimum=1)
    check_choice("update", update, UPDATES)
    t = _temperature(temperature, scores)
    candidates = scores.shape[-1]
    logits = scores / t
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != scores.shape:
            raise ValueError(f"mask must be a bool tensor of the scores' shape {tuple(scores.shape)}, got "
                             f"{type(mask).__name__} {getattr(mask, 'dtype', '')} {tuple(getattr(mask, 'shape', ()))}")
        if mask.numel() and not under_transform(scores, mask):  # a count read off values: eager only
            candidates = int(mask.sum(-1).min())
        logits = logits.masked_fill(~mask, float("-inf"))
    if k > candidates:
        raise ValueError(f"k must be <= the number of candidates, got k={k}, candidates={candidates}")
    by_t = update == "scores"
    with stage("selection"):  # the k softmax rounds
        if torch.is_grad_enabled() and (logits.requires_grad or t.requires_grad) and not under_transform(logits, t):
            return _Rounds.apply(logits, t, k, by_t)
        if not under_transform(logits, t):
            done = knn_rounds_forward(logits, t, k, by_t)  # the C rounds (knn_rounds.c), where they build
            if done is not None:
                return done[0]
        return _rounds(logits, t, k, by_t)


def _rounds(logits: Tensor, t: Tensor, k: int, by_t: bool, trace: list[Tensor] | None = None) -> Tensor:
    """The k softmax rounds of :func:`continuous_knn` from its (masked) logits, op by op; ``trace`` collects each log w."""
    weights = []
    for j in range(k):
        log_w = log_softmax_last(logits)  # M candidates: often a short axis
        weights.append(exp_flushed(log_w))
        if trace is not None:
            trace.append(log_w)
        if j + 1 < k:
            step = _log1mexp(log_w)  # log-softmax: <= 0, no check (nor host sync) per step
            taken = torch.isneginf(step)
            step = step.masked_fill(taken, 0.0)  # a finite stand-in; the entry becomes -inf below
            logits = (logits + (step / t if by_t else step)).masked_fill(taken, float("-inf"))
    return torch.stack(weights, dim=-1)


def _log_softmax_backward(grad: Tensor, log_w: Tensor) -> Tensor:
    """The gradient of the logits of ``log_w = log_softmax_last(logits)``, by the kernel autograd would call."""
    if log_w.device.type == "cpu" and log_w.ndim >= 2 and log_w.shape[-1] < SHORT_AXIS and log_w.shape[-2] > 1:
        # the short-axis route of log_softmax_last: reduced over dim -2 of the transposed copy
        g = torch.ops.aten._log_softmax_backward_data(grad.transpose(-1, -2).contiguous(),
                                                      log_w.transpose(-1, -2).contiguous(), -2, log_w.dtype)
        return g.transpose(-1, -2)
    return torch.ops.aten._log_softmax_backward_data(grad.contiguous(), log_w.contiguous(), -1, log_w.dtype)


class _Rounds(torch.autograd.Function):
    """:func:`_rounds` with its backward written out: the same forward ops, a few ops per round backward.

    Autograd of the op-by-op rounds records ~15 nodes per round (log-softmax, exp, the two
    log1mexp branches, masks, the update); on N3's small candidate sets (8 per query in the
    digits ablation) the time is all per-op overhead. Backward of round j, from the gradient
    ``g`` of the next round's logits (zero where the round took a candidate):
    ``d log w_j = dw_j * w_j + (g / t) * e^{log w_j} / expm1(log w_j)`` (the log1mexp
    derivative; 0 where taken), ``d logits_j = g + d log w_j - w_j * sum(d log w_j)``
    (log-softmax), and ``dt -= sum(g * step_j) / t^2`` for the ``scores`` update. Under
    ``create_graph`` (double backward) the backward differentiates the op-by-op rounds
    instead, so every order of derivative stays exact.

    On the CPU, float32/float64, both directions run in C where the kernels build
    (``knn_rounds.c``: the same arithmetic, its functions in double precision and float32 rows
    kept at float precision between the steps, vectorised over blocks of rows;
    :mod:`~neighborhoods.functional.native`): the op-by-op rounds spend their time in dispatch
    on N3's small candidate sets. Same process, 2-core AMD EPYC, float32, scores to weights
    forward / forward + backward, torch ops -> C: (64, 9, 8), k 3 (the digits ablation)
    0.48 -> 0.14 / 1.24 -> 0.41 ms; (8, 225, 224), k 7 (80x80, the paper's patches)
    39 -> 19 / 118 -> 49 ms.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, t: Tensor, k: int, by_t: bool) -> Tensor:
        done = knn_rounds_forward(logits, t, k, by_t)
        if done is None:
            trace: list[Tensor] = []
            done = _rounds(logits, t, k, by_t, trace), torch.stack(trace, dim=-1)
        weights, log_ws = done
        ctx.save_for_backward(logits, t, weights, log_ws)
        ctx.k, ctx.by_t = k, by_t
        return weights

    @staticmethod
    def backward(ctx, grad: Tensor):
        logits, t, weights, log_ws = ctx.saved_tensors
        want_logits, want_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if torch.is_grad_enabled():  # create_graph: differentiate the op-by-op rounds
            inputs = [x for x, want in ((logits, want_logits), (t, want_t)) if want]
            found = iter(torch.autograd.grad(_rounds(logits, t, ctx.k, ctx.by_t), inputs, grad, create_graph=True))
            return (next(found) if want_logits else None), (next(found) if want_t else None), None, None
        done = knn_rounds_backward(grad, weights, log_ws, t, ctx.by_t, want_t)
        if done is not None:
            return (done[0] if want_logits else None), done[1], None, None
        g_t = torch.zeros_like(t) if want_t and ctx.by_t else None
        g_next = None  # gradient of the next round's logits
        for j in reversed(range(ctx.k)):
            w, log_w = weights[..., j], log_ws[..., j]
            g_log_w = grad[..., j] * w
            g_logits = None
            if g_next is not None:
                taken = log_w >= 0  # log1mexp gave -inf: the candidate left the next round's logits
                through = g_next.masked_fill(taken, 0.0)
                g_step = through / t if ctx.by_t else through
                if g_t is not None:
                    step = torch.where(taken, 0.0, _log1mexp(log_w))
                    g_t = g_t - (through * step).sum_to_size(t.shape) / (t * t)
                slope = torch.where(taken, 0.0, exp_flushed(log_w) / torch.expm1(log_w))
                g_log_w = g_log_w + g_step * slope
                g_logits = through
            # torch's own log-softmax backward kernel, on the layout the forward reduced over (it sums
            # in double on the CPU: where a weight nears 1 the terms are large and cancel)
            g_sm = _log_softmax_backward(g_log_w, log_w)
            g_next = g_sm if g_logits is None else g_logits + g_sm
        return (g_next if want_logits else None), g_t, None, None
