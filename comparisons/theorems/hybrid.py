"""The two ends of ConvNN's hybrid similarity (docs/walk.md, step 3).

``similarity="hybrid"`` ranks tokens by ``lambda^2 |f_i - f_j|^2 + (1 - lambda)^2 |p_i - p_j|^2``
(standardised features ``f``, coordinates ``p``; operators/convnn.py). At ``lambda = 0`` only
positions count: the k = (2r + 1)^2 nearest pixels in euclidean distance are the square window
for r = 1 and r = 2 (the window's corners, at sqrt(2 r^2), are nearer than the next ring's
(0, r + 1) exactly when 2 r^2 < (r + 1)^2), so away from the border the neighbour *set* is
the location-similarity window (the slot order differs: by distance, not raster). At the border
the hybrid has no padding tokens and picks image pixels instead. At ``lambda = 1`` only
features count: the choice is euclidean ConvNN's on the standardised input.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from operators import ConvNN2d

from .base import Trial, describe, randn, theorem

#: (H, W, k): 3x3 and 5x5 windows, square and not
SHAPES = [(7, 9, 9), (6, 6, 25), (5, 8, 9), (8, 7, 25)]


def _sets(layer: ConvNN2d, x: torch.Tensor) -> torch.Tensor:
    """Which keys each query selected, as a 0/1 (B, Nq, Nk) tensor (the slots summed)."""
    return layer.neighborhood(x).to_dense(dtype=torch.float64).sum(-2)[:, 0]


@theorem("convnn.hybrid.lambda0==window",
         "hybrid ConvNN at lambda = 0 selects, for every pixel r away from the border, the same k = (2r+1)^2 pixels "
         "as location ConvNN (= the conv window), r = 1, 2")
def hybrid_lambda0(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for h, w, k in SHAPES:
        x = randn(generator, 2, 3, h, w, dtype=dtype, requires_grad=False)
        hybrid = ConvNN2d(3, 4, k=k, similarity="hybrid", hybrid_lambda=0.0, dtype=dtype)
        location = ConvNN2d(3, 4, k=k, similarity="location", dtype=dtype)
        r = (round(k ** 0.5) - 1) // 2
        inner = torch.zeros(h, w, dtype=torch.bool)
        inner[r:h - r, r:w - r] = True
        q = inner.flatten()
        err = float((_sets(hybrid, x)[:, q] - _sets(location, x)[:, q]).abs().max())
        yield Trial(describe(x=x.shape, k=k, interior=int(q.sum())), err)


@theorem("convnn.hybrid.lambda1==euclidean",
         "hybrid ConvNN at lambda = 1 selects the same neighbours, slot for slot, as euclidean ConvNN on the input "
         "standardised per sample and channel")
def hybrid_lambda1(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for h, w, k in SHAPES:
        x = randn(generator, 2, 3, h, w, dtype=dtype, requires_grad=False)
        standardised = (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), keepdim=True)
        hybrid = ConvNN2d(3, 4, k=k, similarity="hybrid", hybrid_lambda=1.0, dtype=dtype)
        euclidean = ConvNN2d(3, 4, k=k, similarity="euclidean", dtype=dtype)
        mismatch = hybrid.neighborhood(x).index != euclidean.neighborhood(standardised).index
        yield Trial(describe(x=x.shape, k=k), float(mismatch.double().mean()))
