"""Neighbourhood attention's window: ``kernel_size`` keys per axis that shift at the borders.

Hassani et al. 2023 (Neighborhood Attention Transformer, Sec. 3.1): query ``i`` attends to its
``k`` nearest neighbours, so near a border the window does not run off the input (as a
convolution's zero-padded window does) but stays inside it, shifted. On one axis of length
``L``, with ``k <= L``, the window of query ``i`` starts at

    start(i) = clamp(i - k // 2, 0, L - k)

and holds ``start(i), ..., start(i) + k - 1`` (for even ``k`` the query sits right of centre,
as in NATTEN). Dilation ``d`` (Hassani & Shi 2022, DiNAT, Sec. 3) splits the axis into the
``d`` groups of coordinates that agree modulo ``d`` and applies the rule within the query's
group: coordinate ``i`` is entry ``i // d`` of group ``i % d``, which has
``L_g = ceil((L - g) / d)`` entries, and its keys are ``g + d * (start_g(i // d) + j)``. NATTEN
requires ``k * d <= L`` on every axis, which makes every group at least ``k`` long.

A grid's window is the product of its axes' windows, taps in the kernel's row-major order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..checks import check_int_tuple


def check_window_fits(spatial_shape: tuple[int, ...], kernel_size: tuple[int, ...], dilation: tuple[int, ...],
                      name: str = "x") -> None:
    """``kernel_size * dilation <= size`` on every axis (NATTEN's condition), else a named ``ValueError``."""
    bad = [a for a, (n, k, d) in enumerate(zip(spatial_shape, kernel_size, dilation)) if k * d > n]
    if bad:
        raise ValueError(f"neighbourhood attention needs kernel_size * dilation <= the input size on every axis, got "
                         f"kernel_size={kernel_size}, dilation={dilation} for {name}'s spatial shape "
                         f"{tuple(spatial_shape)} (axis {bad[0]})")


def axis_window(length: int, kernel: int, dilation: int = 1, device: torch.device | None = None) -> Tensor:
    """``(length, kernel)``: the coordinates of the keys of every query on one axis (module docstring)."""
    i = torch.arange(length, device=device)
    group, within = i % dilation, i // dilation
    group_length = (length - group + dilation - 1) // dilation  # ceil((L - g) / d)
    start = torch.minimum((within - kernel // 2).clamp_min(0), group_length - kernel)
    return group.unsqueeze(1) + dilation * (start.unsqueeze(1) + torch.arange(kernel, device=device))


def neighborhood_window_index(spatial_shape: tuple[int, ...], kernel_size: tuple[int, ...],
                              dilation: tuple[int, ...] | None = None, device: torch.device | None = None) -> Tensor:
    """Flat key indices of every query's window on a grid numbered row-major.

    Shape:
        ``-> (N, prod(kernel_size))`` with ``N = prod(spatial_shape)``; row ``q`` lists query
        ``q``'s keys in the kernel's row-major order. Every entry is a token of the grid (no
        padding), and every row holds ``prod(kernel_size)`` distinct keys.
    """
    ndim = len(spatial_shape)
    spatial_shape = check_int_tuple("spatial_shape", tuple(spatial_shape), ndim, minimum=1)
    kernel_size = check_int_tuple("kernel_size", tuple(kernel_size), ndim, minimum=1)
    dilation = check_int_tuple("dilation", (1,) * ndim if dilation is None else tuple(dilation), ndim, minimum=1)
    check_window_fits(spatial_shape, kernel_size, dilation, "the grid")
    index = torch.zeros((), dtype=torch.long, device=device)
    for axis, (length, k, d) in enumerate(zip(spatial_shape, kernel_size, dilation)):
        keys = axis_window(length, k, d, device) * math.prod(spatial_shape[axis + 1:])
        # this axis's (query, tap) pair goes to positions `axis` and `ndim + axis` of a
        # (query_0, ..., query_{d-1}, tap_0, ..., tap_{d-1}) grid
        shape = [1] * (2 * ndim)
        shape[axis], shape[ndim + axis] = keys.shape
        index = index + keys.view(shape)
    return index.reshape(math.prod(spatial_shape), math.prod(kernel_size))


def window_mask(index: Tensor, num_keys: int) -> Tensor:
    """The window index as a dense ``(Nq, Nk)`` bool mask, ``True`` where the query may attend."""
    mask = torch.zeros(index.shape[0], num_keys, dtype=torch.bool, device=index.device)
    return mask.scatter_(1, index, True)
