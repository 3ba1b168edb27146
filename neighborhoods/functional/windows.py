"""Sliding-window (``unfold``-style) neighbour indices on a grid.

A convolution's neighbourhood is static: it depends on the grid's shape, never on the data.
These helpers compute, for every output position, the flat indices of the input tokens its
kernel taps read, in the kernel's row-major order.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from ..checks import check_choice, check_int_tuple

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
PADDING_MODES: tuple[str, ...] = get_args(PaddingMode)


def output_size(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int) -> int:
    """Length of one output axis, as ``torch.nn.Conv*`` computes it."""
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def _axis_taps(size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int,
               mode: str, device: torch.device | None) -> tuple[Tensor, Tensor]:
    """Input coordinate of every (output position, tap) on one axis, and whether it is inside."""
    out = output_size(size, kernel, stride, pad, dilation)
    if out < 1:
        raise ValueError(f"input size {size} is too small for kernel_size={kernel} with dilation={dilation} "
                         f"and padding={pad}: the output would be empty")
    pos = (torch.arange(out, device=device) * stride - pad[0]).unsqueeze(1) \
        + torch.arange(kernel, device=device).unsqueeze(0) * dilation
    inside = (pos >= 0) & (pos < size)
    if mode == "zeros":
        pos = pos.clamp(0, size - 1)  # placeholder index; these taps are marked invalid
    elif mode == "reflect":  # mirror without repeating the edge, like F.pad(mode="reflect")
        pos = pos.abs()
        pos = torch.where(pos >= size, 2 * (size - 1) - pos, pos)
    elif mode == "replicate":
        pos = pos.clamp(0, size - 1)
    else:  # circular
        pos = pos.remainder(size)
    return pos, inside


def window_index(spatial_shape: tuple[int, ...], kernel_size: tuple[int, ...], stride: tuple[int, ...],
                 padding: tuple[tuple[int, int], ...], dilation: tuple[int, ...], padding_mode: str = "zeros",
                 device: torch.device | None = None) -> tuple[Tensor, Tensor | None, tuple[int, ...]]:
    """Flat input-token indices read by every output position of a sliding window.

    Args:
        spatial_shape: input grid, e.g. ``(H, W)``; tokens are numbered row-major.
        kernel_size, stride, dilation: one int per axis.
        padding: ``(before, after)`` per axis.
        padding_mode: ``zeros`` taps outside the grid are marked invalid (they read zero);
            ``reflect`` / ``replicate`` / ``circular`` map them back inside, as ``F.pad`` does.

    Returns:
        ``index`` ``(Nq, K)`` with ``Nq = prod(out_shape)``, ``K = prod(kernel_size)`` in the
        kernel's row-major order; ``valid`` ``(Nq, K)`` bool, or ``None`` when every tap is
        inside; ``out_shape``.
    """
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    ndim = len(spatial_shape)
    for name, values, minimum in (("spatial_shape", spatial_shape, 0), ("kernel_size", kernel_size, 1),
                                  ("stride", stride, 1), ("dilation", dilation, 1)):
        check_int_tuple(name, tuple(values), ndim, minimum=minimum)
    if len(padding) != ndim:
        raise ValueError(f"padding must have {ndim} (before, after) pairs, got padding={tuple(padding)!r}")
    for axis, pair in enumerate(padding):
        check_int_tuple(f"padding[{axis}]", tuple(pair), 2, minimum=0)
    for axis, (size, (lo, hi)) in enumerate(zip(spatial_shape, padding)):
        if padding_mode == "reflect" and max(lo, hi) >= size:
            raise ValueError(f"reflect padding must be < the input size on every axis, got padding={(lo, hi)} "
                             f"for size {size} on spatial axis {axis}")
        if padding_mode == "circular" and max(lo, hi) > size:
            raise ValueError(f"circular padding must be <= the input size on every axis, got padding={(lo, hi)} "
                             f"for size {size} on spatial axis {axis}")
    index = torch.zeros((), dtype=torch.long, device=device)
    valid = torch.ones((), dtype=torch.bool, device=device)
    out_shape = []
    for axis in range(ndim):
        pos, inside = _axis_taps(spatial_shape[axis], kernel_size[axis], stride[axis], padding[axis],
                                 dilation[axis], padding_mode, device)
        out_shape.append(pos.shape[0])
        row_stride = math.prod(spatial_shape[axis + 1:])
        # the axis's (out, tap) pair goes to positions `axis` and `ndim + axis` of a
        # (out_0, ..., out_{d-1}, tap_0, ..., tap_{d-1}) grid
        shape = [1] * (2 * ndim)
        shape[axis], shape[ndim + axis] = pos.shape
        index = index + (pos * row_stride).view(shape)
        valid = valid & inside.view(shape)
    nq, k = math.prod(out_shape), math.prod(kernel_size)
    index = index.reshape(nq, k)
    valid = valid.expand(*out_shape, *kernel_size).reshape(nq, k)
    # every tap inside, decided from the shapes alone (no tensor value steers Python: compile/export)
    all_inside = all(pad[0] <= 0 and (out - 1) * s - pad[0] + (k - 1) * d < size
                     for out, s, pad, k, d, size in zip(out_shape, stride, padding, kernel_size, dilation, spatial_shape))
    return index, (None if all_inside or padding_mode != "zeros" else valid), tuple(out_shape)
