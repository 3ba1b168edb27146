"""Pairwise kernels on scalar entries, explicitly and as a sum of separable features.

The compact generalized non-local block (Yue et al. 2018, Sec. 3.3) scores every pair of
(channel, position) entries, an ``NC x NC`` matrix. A kernel that is a finite sum of
products ``f(a, b) = sum_p phi_p(a) phi_p(b)`` never needs that matrix:
``sum_v f(a_u, b_v) z_v = sum_p phi_p(a_u) (sum_v phi_p(b_v) z_v)``. The Gaussian kernel
becomes such a sum through the Taylor expansion of its cross term:

    exp(-gamma (a - b)^2) = e^{-gamma a^2} e^{-gamma b^2} sum_p (2 gamma a b)^p / p!

truncated after ``order`` terms; ``phi_p(a) = e^{-gamma a^2} sqrt((2 gamma)^p / p!) a^p``.
:func:`entry_kernel` evaluates the (truncated) kernel pair by pair, :func:`entry_features`
gives the features; ``entry_kernel(a, b) == entry_features(a) @ entry_features(b).T``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from ..checks import check_choice, check_float, check_int

EntryKernel = Literal["dot", "gaussian"]
ENTRY_KERNELS: tuple[str, ...] = get_args(EntryKernel)


def _check(kernel: str, order: int, gamma: float) -> None:
    check_choice("kernel", kernel, ENTRY_KERNELS)
    check_int("order", order, minimum=1)
    check_float("gamma", gamma, low=0.0, low_open=True)


def entry_kernel(a: Tensor, b: Tensor, kernel: str = "dot", order: int = 3, gamma: float = 0.5) -> Tensor:
    """``f(a_u, b_v)`` for every pair: ``a_u b_v`` (``'dot'``) or the order-``order`` Taylor Gaussian.

    Shape:
        a: ``(..., U)``, b: ``(..., V)`` -> ``(..., U, V)``.
    """
    _check(kernel, order, gamma)
    ab = a.unsqueeze(-1) * b.unsqueeze(-2)
    if kernel == "dot":
        return ab
    series = sum((2 * gamma * ab) ** p / float(math.factorial(p)) for p in range(order + 1))
    return torch.exp(-gamma * a.square()).unsqueeze(-1) * series * torch.exp(-gamma * b.square()).unsqueeze(-2)


def entry_features(a: Tensor, kernel: str = "dot", order: int = 3, gamma: float = 0.5) -> Tensor:
    """Separable features of :func:`entry_kernel`: ``(..., U) -> (..., U, P)``.

    ``P = 1`` for ``'dot'`` (the entry itself), ``order + 1`` for ``'gaussian'``.
    """
    _check(kernel, order, gamma)
    if kernel == "dot":
        return a.unsqueeze(-1)
    p = torch.arange(order + 1, dtype=a.dtype, device=a.device)
    coef = torch.tensor([math.sqrt((2 * gamma) ** k / math.factorial(k)) for k in range(order + 1)],
                        dtype=a.dtype, device=a.device)
    return torch.exp(-gamma * a.square()).unsqueeze(-1) * coef * a.unsqueeze(-1) ** p
