"""Channels-first tensors <-> token matrices.

Layers take channels-first input like torch's convs; the neighbourhood machinery works on
token matrices ``(B, N, C)`` with tokens numbered row-major over the spatial axes.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor


def to_tokens(x: Tensor) -> Tensor:
    """``(B, C, *spatial) -> (B, N, C)`` with ``N = prod(spatial)``."""
    return rearrange(x, "b c ... -> b (...) c")


def from_tokens(y: Tensor, spatial_shape: tuple[int, ...]) -> Tensor:
    """``(B, N, C) -> (B, C, *spatial_shape)``."""
    return rearrange(y, "b n c -> b c n").reshape(y.shape[0], y.shape[-1], *spatial_shape)
