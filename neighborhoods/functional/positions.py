"""Coordinates of grid tokens, used by position (location) similarity."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..checks import check_int


def grid_coordinates(spatial_shape: tuple[int, ...], padding: int = 0, *, normalize: bool = True,
                     dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """Coordinates of every token of a (zero-padded) grid, row-major.

    With ``normalize`` the image's own tokens span ``[-1, 1]`` on their longest axis, and
    every axis uses that same spacing, so distances stay isotropic on a non-square grid (a
    3x3 window is then the 9 nearest tokens whatever the aspect ratio). Padding tokens lie
    beyond ``[-1, 1]`` at the same spacing. Without ``normalize`` coordinates are integers
    offset so that the image starts at 0.

    Shape:
        ``-> (prod(s + 2 * padding for s in spatial_shape), len(spatial_shape))``.
    """
    if not isinstance(spatial_shape, Sequence) or isinstance(spatial_shape, str) or not spatial_shape:
        raise ValueError(f"spatial_shape must be a non-empty sequence of sizes, e.g. (H, W), got {spatial_shape!r}")
    spatial_shape = tuple(check_int(f"spatial_shape[{i}]", s, minimum=0) for i, s in enumerate(spatial_shape))
    padding = check_int("padding", padding, minimum=0)
    longest = max(spatial_shape)
    step = 2.0 / (longest - 1) if (normalize and longest > 1) else 1.0
    axes = []
    for size in spatial_shape:
        ticks = torch.arange(-padding, size + padding, dtype=dtype, device=device)
        axes.append((ticks - (size - 1) / 2) * step if normalize else ticks)
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def padded_to_image_index(spatial_shape: tuple[int, ...], padding: int,
                          device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Map tokens of the zero-padded grid to tokens of the image.

    Returns ``(index, inside)``, both ``(prod(s + 2p),)``: the image token each padded-grid
    token corresponds to (0 for padding tokens) and whether it is an image token at all.
    """
    coords = grid_coordinates(spatial_shape, padding, normalize=False, dtype=torch.long, device=device)
    size = torch.tensor(spatial_shape, device=device)
    inside = ((coords >= 0) & (coords < size)).all(-1)
    strides = torch.tensor([math.prod(spatial_shape[i + 1:]) for i in range(len(spatial_shape))], device=device)
    index = torch.where(inside, (coords.clamp_min(0) * strides).sum(-1), 0)
    return index, inside


def image_in_padded_index(spatial_shape: tuple[int, ...], padding: int,
                          device: torch.device | None = None) -> Tensor:
    """The padded-grid index of every image token, in raster order: ``(prod(s),)`` long.

    The tokens where :func:`padded_to_image_index`'s ``inside`` holds, computed from the
    shape alone (no ``nonzero``, whose output size depends on values: compile/export/vmap).
    """
    padded = [int(s) + 2 * padding for s in spatial_shape]
    index = torch.zeros((), dtype=torch.long, device=device)
    for axis, size in enumerate(spatial_shape):
        stride = math.prod(padded[axis + 1:])
        shape = [1] * len(spatial_shape)
        shape[axis] = int(size)
        index = index + ((torch.arange(int(size), device=device) + padding) * stride).view(shape)
    return index.reshape(-1)
