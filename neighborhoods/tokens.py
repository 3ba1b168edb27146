"""Channels-first tensors <-> token matrices.

Layers take channels-first input like torch's convs; the neighbourhood machinery works on
token matrices ``(B, N, C)`` with tokens numbered row-major over the spatial axes.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor


def to_tokens(x: Tensor) -> Tensor:
    """``(B, C, *spatial) -> (B, N, C)`` with ``N = prod(spatial)``."""
    return rearrange(x, "b c ... -> b (...) c")


def from_tokens(y: Tensor, spatial_shape: tuple[int, ...]) -> Tensor:
    """``(B, N, C) -> (B, C, *spatial_shape)``: a view of ``y`` (channels-last strides) in eager mode."""
    out = rearrange(y, "b n c -> b c n").reshape(y.shape[0], y.shape[-1], *spatial_shape)
    if torch.compiler.is_compiling():
        # Under torch.compile(dynamic=True), Inductor (torch 2.13) sorts the symbolic strides of a
        # view it saves for backward with plain sympy comparisons and fails on this one
        # ("cannot determine truth value of Relational: 2*s**2 < 2*s"); a contiguous copy is no
        # view. Same values; eager keeps the zero-copy view.
        out = out.contiguous()
    return out


def to_entries(tokens: Tensor, groups: int) -> Tensor:
    """Token matrix -> one graph node per (channel, position) entry, per channel group.

    ``(B, N, g*c) -> (B, g, c*N, 1)``, channel-major within a group: entry ``(ch, n)`` is
    node ``ch * N + n``, i.e. ``vec`` of the group's ``(c, N)`` block (CGNL's layout).
    """
    return rearrange(tokens, "b n (g c) -> b g (c n) 1", g=groups)


def from_entries(entries: Tensor, num_positions: int) -> Tensor:
    """Inverse of :func:`to_entries`: ``(B, g, c*N, 1) -> (B, N, g*c)``."""
    return rearrange(entries, "b g (c n) 1 -> b n (g c)", n=num_positions)
