"""The symmetric normalisation of an affinity, ``D^-1/2 (M + M^T)/2 D^-1/2``, without underflow.

Axis legend: ``...`` leading axes (batch, heads), ``q`` queries, ``n`` keys (``q == n``).

The spectral non-local block (Zhu et al. 2021, Sec. 4) normalises ``M = f(S)`` by the
degrees ``d_i = sum_j M_hat_ij`` of ``M_hat = (M + M^T)/2``. For a positive kernel
(``exp``, ``sigmoid``) this is computed in log space: ``log M`` is ``S`` (exp) or
``-softplus(-S)`` (log-sigmoid), ``log M_hat`` a ``logaddexp``, ``log d`` a ``logsumexp``,
and ``A_ij = exp(log M_hat_ij - (log d_i + log d_j) / 2)``. So no degree underflows to 0
(nor overflows) however widely the scores spread: in float32 a score range of a few
hundred already empties whole rows of ``exp(S - max S)``.

Where a degree is exactly 0 (a query whose every key is masked, or a ``dot``/``relu``
kernel whose row sums to 0) that row and column of ``A`` are 0: the node has no edges.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_tensor

#: kernels f(s) the normalisation accepts; exp and sigmoid are positive and go through log space
SYMMETRIC_KERNELS = ("dot", "exp", "sigmoid", "relu")
_LOG_KERNELS = {"exp": lambda s: s, "sigmoid": lambda s: -F.softplus(-s)}
_KERNELS = {"dot": lambda s: s, "relu": torch.relu}
_LOG_2 = math.log(2.0)


def symmetric_normalize(scores: Tensor, kernel: str = "exp", mask: Tensor | None = None) -> Tensor:
    """``A = D^-1/2 M_hat D^-1/2`` with ``M = f(scores)``, ``M_hat = (M + M^T) / 2``, ``D = diag(M_hat 1)``.

    Args:
        scores: ``(..., N, N)`` pairwise scores ``S``.
        kernel: ``f``, one of :data:`SYMMETRIC_KERNELS`.
        mask: bool, broadcastable to ``scores``; ``False`` entries of ``M`` are 0.

    Shape:
        scores ``(..., N, N)`` -> ``(..., N, N)``, symmetric.
    """
    check_tensor("scores", scores)
    check_choice("kernel", kernel, SYMMETRIC_KERNELS)
    if scores.ndim < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"normalize='symmetric' needs a square affinity (..., N, N), got shape {tuple(scores.shape)}")
    if kernel in _LOG_KERNELS:
        return _log_space(_LOG_KERNELS[kernel](scores), mask)
    m = _KERNELS[kernel](scores)
    if mask is not None:
        m = m.masked_fill(~mask, 0.0)
    m = (m + m.transpose(-1, -2)) / 2
    degree = m.sum(-1)
    empty = degree == 0
    # the inner where keeps rsqrt away from 0, so the backward pass never sees 0 * inf
    scale = torch.where(empty, 0.0, torch.where(empty, 1.0, degree).rsqrt())
    return scale.unsqueeze(-1) * m * scale.unsqueeze(-2)


def _log_space(log_m: Tensor, mask: Tensor | None) -> Tensor:
    """The symmetric normalisation of ``M = exp(log_m)``, every step a log-sum-exp."""
    if mask is not None:
        log_m = log_m.masked_fill(~mask, float("-inf"))
    # A is invariant to scaling M: shift the logs so the largest is 0, where float spacing is finest
    shift = log_m.detach().amax((-1, -2), keepdim=True)
    log_m = log_m - shift.masked_fill(torch.isneginf(shift), 0.0)
    log_hat = torch.logaddexp(log_m, log_m.transpose(-1, -2)) - _LOG_2
    # a node without a single edge has log degree -inf (and a logsumexp gradient of 0 * nan): give it a
    # finite stand-in; its row and column of log M_hat are -inf, so its weights are exactly 0 either way
    empty = torch.isneginf(log_hat).all(-1)
    log_degree = torch.logsumexp(log_hat.masked_fill(empty.unsqueeze(-1), 0.0), -1).masked_fill(empty, 0.0)
    return torch.exp(log_hat - (log_degree.unsqueeze(-1) + log_degree.unsqueeze(-2)) / 2)
