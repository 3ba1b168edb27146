"""Patch items (im2col / col2im) and search windows over a grid of items.

The N3 block matches image *patches*, not pixels (Ploetz & Roth 2018, Sec. 4, "N3 block for
image data"): a strided im2col turns an image into a grid of patch items, and col2im turns
per-patch results back into an image, averaging where patches overlap. An image the patches
do not tile is zero-padded to the next size they do (as the authors' public code does) and
the folded result is cropped back. Each query item
searches only a window of items around it, shifted inward at the border so that every
query has the same number of candidates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_int_tuple, check_tensor
from .fold import block_fold, block_foldable
from .stages import stage
from .transforms import under_transform

#: images (padded) of at most this many pixels are unfolded by one ``index_select`` of their
#: pixels instead of ``F.unfold``, whose CPU kernel loops over the batch (a select and an im2col
#: per sample, forward and backward). Measured on a 2-core AMD EPYC, forward + backward, B = 32,
#: 2x2 patches every pixel, 2 threads (1 thread): 4x4 C 32 206 -> 106 us (198 -> 121), 8x8 C 16
#: 289 -> 150 us (321 -> 236), 16x16 C 16 899 -> 510 us (1174 -> 1167), 32x32 C 8 1854 -> 2039
#: us (2692 -> 4240): a loss from 32x32 up.
GATHER_MAX_PIXELS = 256


@functools.lru_cache(maxsize=64)
def _patch_pixels(size: tuple[int, int], patch_size: tuple[int, int], stride: tuple[int, int],
                  device: torch.device) -> Tensor:
    """Pixel of each im2col entry, ``(ph * pw * Np,)`` in ``F.unfold``'s order (offset-major): F.unfold of the pixel ids."""
    ids = torch.arange(size[0] * size[1], dtype=torch.float64).view(1, 1, *size)
    return F.unfold(ids, patch_size, stride=stride).reshape(-1).long().to(device)


@dataclass(frozen=True)
class Patches:
    """``patch_size`` x ``patch_size`` patches taken every ``stride`` pixels (2-D images).

    col2im covers every pixel only when the patches tile the image, ``(H - patch) % stride
    == 0`` (likewise W). Other images are zero-padded, per axis, to the smallest size
    ``>= max(H, patch)`` that tiles, ``floor(pad / 2)`` before and ``ceil(pad / 2)`` after
    (:meth:`pads`); :meth:`unfold` pads, :meth:`fold` crops back, so every pixel of the
    image is in some patch and the output has the image's size.
    """

    patch_size: tuple[int, int]
    stride: tuple[int, int]

    @classmethod
    def of(cls, patch_size: int | tuple[int, int], stride: int | tuple[int, int]) -> Patches:
        return cls(check_int_tuple("patch_size", patch_size, 2, minimum=1),
                   check_int_tuple("stride", stride, 2, minimum=1))

    @property
    def area(self) -> int:
        return math.prod(self.patch_size)

    def pads(self, spatial: tuple[int, ...]) -> tuple[tuple[int, int], tuple[int, int]]:
        """Zeros added ``(before, after)`` on each axis of an ``(H, W)`` image so that the patches tile it."""
        if len(spatial) != 2:
            raise ValueError(f"patches need a 2-D image (B, C, H, W), got spatial shape {tuple(spatial)}")
        out = []
        for size, p, s in zip(spatial, self.patch_size, self.stride):
            # floor divisions only (no max, no modulo): under torch.compile with dynamic shapes
            # Inductor (torch 2.13) loses the value range of Max/Mod size expressions
            # in the backward ("vr must not be None"); size >= p is a guard, not an expression
            pad = p - size if size < p else (size - p + s - 1) // s * s - (size - p)
            out.append((pad // 2, pad - pad // 2))
        return out[0], out[1]

    def padded(self, spatial: tuple[int, ...]) -> tuple[int, int]:
        """The size of the image the patches are taken from: ``spatial`` plus :meth:`pads`."""
        (top, bottom), (left, right) = self.pads(spatial)
        return spatial[0] + top + bottom, spatial[1] + left + right

    def grid(self, spatial: tuple[int, ...]) -> tuple[int, int]:
        """The grid of patch positions on an ``(H, W)`` image (padded to tile, see :meth:`pads`)."""
        h, w = self.padded(spatial)
        return ((h - self.patch_size[0]) // self.stride[0] + 1, (w - self.patch_size[1]) // self.stride[1] + 1)

    def unfold(self, x: Tensor) -> Tensor:
        """im2col of the zero-padded image: ``(B, C, H, W) -> (B, Np, C * ph * pw)``, patches row-major,
        features ``(c, i, j)``."""
        check_tensor("x", x, ndim=4)
        (top, bottom), (left, right) = self.pads(tuple(x.shape[2:]))
        with stage("gathering"):  # reading the patches
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
            size = (x.shape[2], x.shape[3])
            if size[0] * size[1] <= GATHER_MAX_PIXELS and not under_transform(x):
                # the same entries as F.unfold's, in its (B, C ph pw, Np) layout, by one gather
                pixels = _patch_pixels(size, self.patch_size, self.stride, x.device)
                cols = x.flatten(2).index_select(2, pixels)
                return cols.view(x.shape[0], x.shape[1] * self.area, pixels.numel() // self.area).transpose(1, 2)
            return F.unfold(x, self.patch_size, stride=self.stride).transpose(1, 2)

    # Run eagerly under torch.compile: with dynamic shapes the padded size carries Max/Mod
    # expressions into the cropped view's strides, and Inductor's (torch 2.13) value-range
    # analysis of a view of that crop fails ("Exponent must be non-negative", "Invalid ranges").
    # F.fold is one native op, so nothing is lost by not tracing it.
    @torch.compiler.disable
    def fold(self, items: Tensor, spatial: tuple[int, int]) -> Tensor:
        """col2im averaging overlaps, cropped to the image: ``(B, Np, C * ph * pw) -> (B, C, H, W)``."""
        (top, bottom), (left, right) = self.pads(tuple(spatial))
        size = self.padded(tuple(spatial))
        with stage("combining"):  # overlapping patches summed into pixels, averaged
            if block_foldable(self.patch_size, self.stride):
                # the same bits as F.fold, without its transposed copy and per-channel loop
                total = block_fold(items, size, self.patch_size, self.stride)
            else:
                total = F.fold(items.transpose(1, 2), size, self.patch_size, stride=self.stride)
            ones = torch.ones(1, self.area, items.shape[1], dtype=items.dtype, device=items.device)
            out = total / F.fold(ones, size, self.patch_size, stride=self.stride)
            return out[..., top:size[0] - bottom, left:size[1] - right]


def window_candidates(grid: tuple[int, ...], window: tuple[int, ...] | None, exclude_self: bool = True,
                      device: torch.device | None = None) -> Tensor:
    """Candidate items of every query item: a ``window`` block of grid positions around it.

    On each axis the block of ``s`` positions starts at ``clamp(i - s // 2, 0, n - s)``: centred
    on the query, shifted inward at the border (so it always holds ``prod(window)`` items and
    always contains the query). ``window=None`` takes the whole grid. With ``exclude_self`` the
    query itself is removed. Candidates are listed in row-major order.

    Shape:
        ``-> (prod(grid), prod(window) - exclude_self)`` long.
    """
    window = tuple(grid) if window is None else tuple(window)
    if len(window) != len(grid) or any(s < 1 or s > n for s, n in zip(window, grid)):
        raise ValueError(f"window must hold between 1 and the grid's size positions per axis, "
                         f"got window={window} for an item grid of {tuple(grid)}")
    ndim = len(grid)
    index = torch.zeros((), dtype=torch.long, device=device)
    for axis, (n, s) in enumerate(zip(grid, window)):
        i = torch.arange(n, device=device)
        pos = (i - s // 2).clamp(0, n - s).unsqueeze(1) + torch.arange(s, device=device)  # (n, s)
        shape = [1] * (2 * ndim)
        shape[axis], shape[ndim + axis] = n, s
        index = index + (pos * math.prod(grid[axis + 1:])).view(shape)
    nq = math.prod(grid)
    index = index.reshape(nq, math.prod(window))
    if exclude_self:
        if index.shape[1] < 2:
            raise ValueError(f"a window of {window} holds only the query itself; nothing is left to choose from")
        # every row holds the query exactly once: skip its column. A select between the columns
        # before and after it, not a boolean mask (its output size would depend on values:
        # compile/export) nor a gather (Inductor cannot bound an index that was itself gathered:
        # "vr must not be None" compiling the KNN block)
        own = (index == torch.arange(nq, device=device).unsqueeze(1)).long().argmax(1, keepdim=True)  # (nq, 1)
        cols = torch.arange(index.shape[1] - 1, device=device).unsqueeze(0)
        index = torch.where(cols >= own, index[:, 1:], index[:, :-1])
    return index
