"""Neighbourhood attention is a softmax over NATTEN's shifted window; a window covering the input is attention."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import torch

from neighborhoods.functional import neighborhood_window_index
from operators import (NeighborhoodAttention1d, NeighborhoodAttention2d, NeighborhoodAttention3d, SelfAttention2d,
                       SelfAttention3d)

from .base import Trial, describe, max_error, randn, theorem

#: (layer, input shape, kernel covering it, heads); a 1-D / 3-D grid is a (1, N) / (T, H W) image
#: to SelfAttention2d, since tokens are numbered row-major either way
COVERING = [
    (NeighborhoodAttention2d, (2, 8, 7, 7), 7, 2), (NeighborhoodAttention2d, (2, 4, 5, 7), (5, 7), 1),
    (NeighborhoodAttention1d, (2, 4, 9), 9, 2), (NeighborhoodAttention3d, (2, 4, 3, 4, 5), (3, 4, 5), 2),
]
#: (layer, input shape, kernel, dilation, heads): windows smaller than the input, odd and even, dilated
WINDOWS = [
    (NeighborhoodAttention2d, (2, 4, 6, 7), 3, 1, 2), (NeighborhoodAttention2d, (2, 6, 9, 8), (3, 2), (2, 3), 3),
    (NeighborhoodAttention1d, (2, 4, 13), 5, 2, 2), (NeighborhoodAttention3d, (2, 4, 4, 5, 6), (2, 3, 3), (2, 1, 2), 2),
]


def _randomized(layer: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.5)
    return layer


@theorem("neighborhood_attention.covering==self_attention2d",
         "neighbourhood attention whose window covers the input equals SelfAttention2d loaded with its state_dict "
         "(1-D, 2-D, 3-D, both paths)")
def covering_window(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for cls, shape, kernel, heads in COVERING:
        c = shape[1]
        na = _randomized(cls(c, heads, kernel, dtype=dtype), generator)
        sa = SelfAttention2d(c, heads, dtype=dtype)
        sa.load_state_dict(na.state_dict())
        x = randn(generator, *shape, dtype=dtype)
        image = (shape[0], c, 1, shape[2]) if len(shape) == 3 else (shape[0], c, shape[2], math.prod(shape[3:]))
        for path in ("fast", "reference"):
            err = max_error(lambda: na(x, path=path), lambda: sa(x.reshape(image)).reshape(x.shape), [x], generator,
                            a_params=list(na.parameters()), b_params=list(sa.parameters()))
            yield Trial(describe(layer=cls.__name__, x=x.shape, kernel=kernel, heads=heads, path=path), err)


@theorem("neighborhood_attention3d.covering==self_attention3d",
         "NeighborhoodAttention3d whose window covers the T x H x W input equals SelfAttention3d with the same "
         "weights (one's state_dict loads into the other, both ways; both paths of both)")
def covering_window_3d(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape, kernel, heads in [((2, 4, 3, 4, 5), (3, 4, 5), 2), ((1, 6, 3, 3, 3), 3, 3), ((2, 4, 4, 2, 3), (4, 2, 3), 1)]:
        c = shape[1]
        sa = _randomized(SelfAttention3d(c, heads, dtype=dtype), generator)
        na = NeighborhoodAttention3d(c, heads, kernel, dtype=dtype)
        na.load_state_dict(sa.state_dict())
        sa.load_state_dict(na.state_dict())
        x = randn(generator, *shape, dtype=dtype)
        for path in ("fast", "reference"):
            err = max_error(lambda: na(x, path=path), lambda: sa(x, path=path), [x], generator,
                            a_params=list(na.parameters()), b_params=list(sa.parameters()))
            yield Trial(describe(x=x.shape, kernel=kernel, heads=heads, path=path), err)


def natten_is_neighbor(i: int, j: int, length: int, k: int, d: int) -> bool:
    """Key ``j`` is in query ``i``'s window on one axis, as NATTEN's reference mask decides it
    (non-causal, stride 1): same dilation group; within it, the window starts at
    ``max(c - left, 0)``, moved back by ``L_g - right - c - 1`` when ``c + right >= L_g``
    (``left = k // 2``, ``right = k // 2 + k % 2 - 1``), and holds ``k`` entries."""
    if i % d != j % d:
        return False
    group_length = len(range(i % d, length, d))
    c = i // d
    left, right = k // 2, k // 2 + (k % 2) - 1
    start = max(c - left, 0) + (group_length - right - c - 1 if c + right >= group_length else 0)
    return start <= j // d < start + k


@theorem("neighborhood_attention.window==natten_rule",
         "the shifted window (clamp(i - k//2, 0, L - k) per dilation group) is, key for key, NATTEN's "
         "neighbour rule checked pair by pair", float64=0.0, float32=0.0)
def window_rule(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape, kernel, dilation in [((9,), (3,), (1,)), ((11,), (4,), (2,)), ((8, 9), (3, 2), (2, 3)),
                                    ((7, 7), (7, 7), (1, 1)), ((4, 6, 5), (2, 3, 2), (2, 2, 2))]:
        index = neighborhood_window_index(shape, kernel, dilation)
        n = math.prod(shape)
        ours = torch.zeros(n, n, dtype=torch.bool).scatter_(1, index, True)
        coords = list(itertools.product(*(range(s) for s in shape)))
        rule = torch.tensor([[all(natten_is_neighbor(a, b, length, k, d)
                                  for a, b, length, k, d in zip(cq, cn, shape, kernel, dilation))
                              for cn in coords] for cq in coords])
        distinct = all(len(set(row.tolist())) == index.shape[1] for row in index)
        # the error is the fraction of (query, key) pairs on which the two disagree (1 if a row repeats a key)
        err = (ours != rule).double().mean().item() if distinct else 1.0
        yield Trial(describe(grid=shape, kernel=kernel, dilation=dilation), err)


@theorem("neighborhood_attention.fast==reference",
         "neighbourhood attention's masked F.scaled_dot_product_attention equals its window neighbourhood path")
def fast_equals_reference(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for cls, shape, kernel, dilation, heads in WINDOWS:
        layer = _randomized(cls(shape[1], heads, kernel, dilation, dtype=dtype), generator)
        x = randn(generator, *shape, dtype=dtype)
        err = max_error(lambda: layer(x, path="fast"), lambda: layer(x, path="reference"),
                        [x, *layer.parameters()], generator)
        yield Trial(describe(layer=cls.__name__, x=x.shape, kernel=kernel, dilation=dilation, heads=heads), err)
