"""col2im by whole sub-blocks, for patches whose size is a multiple of their stride.

Axis legend: ``b`` batch, ``c`` channels, ``g`` patch grid rows/columns, ``r`` sub-blocks per
patch side (``patch / stride``), ``s`` the stride.

``F.fold`` (col2im) on CPU walks the ``C * ph * pw`` patch channels one at a time and, for an
input laid out patch-major ``(B, Np, C * ph * pw)`` as the N3 block's volumes are, first copies
it to ``(B, C * ph * pw, Np)``. When ``ph = r * s`` (the paper's 10x10 patches every 5 pixels:
``r = 2``) every patch is an ``r x r`` grid of ``s x s`` sub-blocks, and sub-block ``(a, b)`` of
the patch at grid position ``(i, j)`` covers image block ``(i + a, j + b)``. The fold is then
``r^2`` additions of whole strided tensors, read in place from the patch-major layout. They
run in col2im's own order (offsets ascending, row-major, onto a zero image), so the result has
the same bits as ``F.fold``; the backward is im2col, one strided copy of the gradient.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: smallest stride the sub-block fold is used for: with strides below it the s x s runs are too
#: short for the strided additions to beat col2im (2-core Xeon, float32: at stride 5, 80x80,
#: C = 64, 23 vs 64 ms on one thread; at stride 1 or 2 on 4x4 to 16x16 maps, 1.3x slower)
MIN_STRIDE = 4


def block_foldable(patch_size: tuple[int, int], stride: tuple[int, int]) -> bool:
    """Whether :func:`block_fold` applies: every patch side a multiple of its stride, strides >= :data:`MIN_STRIDE`."""
    return all(p % s == 0 and s >= MIN_STRIDE for p, s in zip(patch_size, stride))


def _unfold(image: Tensor, grid: tuple[int, int], patch_size: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """im2col into the patch-major layout: ``(B, C, H, W) -> (B, Np, C * ph * pw)``, features ``(c, i, j)``."""
    b, c = image.shape[:2]
    (ph, pw), (sh, sw) = patch_size, stride
    # only the rows and columns the grid reaches (a padded image may hold a few more)
    image = image[:, :, : (grid[0] - 1) * sh + ph, : (grid[1] - 1) * sw + pw]
    windows = image.unfold(2, ph, sh).unfold(3, pw, sw)  # (b, c, gh, gw, ph, pw), a view
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(b, grid[0] * grid[1], c * ph * pw)


def _fold(items: Tensor, grid: tuple[int, int], size: tuple[int, int], patch_size: tuple[int, int],
          stride: tuple[int, int]) -> Tensor:
    b = items.shape[0]
    (gh, gw), (sh, sw) = grid, stride
    rh, rw = patch_size[0] // sh, patch_size[1] // sw
    c = items.shape[-1] // (patch_size[0] * patch_size[1])
    # (b, gh, gw, c, a, u, b', v): sub-block (a, b') of each patch, pixel (u, v) inside it
    blocks = items.reshape(b, gh, gw, c, rh, sh, rw, sw)
    # the image as blocks: (b, c, block row, u, block column, v); rows/columns past the grid's reach stay 0
    out = items.new_zeros(b, c, max(gh + rh - 1, -(-size[0] // sh)), sh, max(gw + rw - 1, -(-size[1] // sw)), sw)
    for a in range(rh):
        for bb in range(rw):
            out[:, :, a:a + gh, :, bb:bb + gw, :] += blocks[:, :, :, :, a, :, bb, :].permute(0, 3, 1, 4, 2, 5)
    return out.flatten(4, 5).flatten(2, 3)[:, :, : size[0], : size[1]]


class _BlockFold(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, items: Tensor, grid: tuple[int, int], size: tuple[int, int],
                patch_size: tuple[int, int], stride: tuple[int, int]) -> Tensor:
        ctx.shape = (grid, patch_size, stride)
        return _fold(items, grid, size, patch_size, stride)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grid, patch_size, stride = ctx.shape
        # differentiable ops: a second derivative goes through them (and back through the fold)
        return _unfold(grad, grid, patch_size, stride), None, None, None, None


def block_fold(items: Tensor, size: tuple[int, int], patch_size: tuple[int, int],
               stride: tuple[int, int]) -> Tensor:
    """``F.fold(items.transpose(1, 2), size, patch_size, stride=stride)`` by sub-blocks (module docstring).

    Needs :func:`block_foldable`; ``size`` must be one the patches tile exactly or overhang
    by less than a stride, as ``F.fold`` allows. Same bits as ``F.fold``; differentiable to any order.

    Shape:
        ``items (B, Np, C * ph * pw) -> (B, C, *size)``.
    """
    grid = tuple((n - p) // s + 1 for n, p, s in zip(size, patch_size, stride))
    if grid[0] * grid[1] != items.shape[1]:
        raise ValueError(f"items must hold one row per patch of a {grid} grid ({grid[0] * grid[1]}), "
                         f"got {items.shape[1]} for size={tuple(size)}, patch_size={tuple(patch_size)}, "
                         f"stride={tuple(stride)}")
    return _BlockFold.apply(items, grid, tuple(size), tuple(patch_size), tuple(stride))
