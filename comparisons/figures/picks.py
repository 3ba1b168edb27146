"""What ``show`` ranks: one query's picks (pixels or patches) with their weights and scores.

The weights are the layer's own (``Neighborhood.query_map`` / ``key_weights``). The score of
a hard k-NN pick (ConvNN) is the similarity its selector ranked it by: the selector's own
descriptors (:meth:`~neighborhoods.selectors.HardKNN.descriptors`) compared with its own
metric (:func:`~neighborhoods.functional.similarity.similarity`), so the ranking shown is the
one the layer used (the query first when ``self_first``, then nearest first, ties to the
lower index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from neighborhoods import Neighborhood
from neighborhoods.functional.positions import image_in_padded_index
from neighborhoods.functional.similarity import larger_is_nearer, similarity
from neighborhoods.selectors import HardKNN


@dataclass(frozen=True)
class PixelPick:
    rank: int
    pixel: tuple[int, int]
    weight: float
    score: float | None = None


@dataclass(frozen=True)
class PatchPick:
    slot: int
    rank: int
    top_left: tuple[int, int]
    centre: tuple[float, float]
    weight: float


def knn_scores(selector: HardKNN, x: Tensor, pixel: tuple[int, int]) -> np.ndarray:
    """``(H, W)``: the hard k-NN selector's score of every pixel for the query at ``pixel``."""
    spatial = tuple(x.shape[2:])
    with torch.no_grad():
        keys = selector.descriptors(x)  # (B', Np, D) over the padded grid
        image = image_in_padded_index(spatial, selector.padding, x.device)  # (N,) padded index of each pixel
        q = image[pixel[0] * spatial[1] + pixel[1]]
        scores = similarity(keys[:1, q:q + 1], keys[:1, image], selector.metric)[0, 0]
    return scores.reshape(spatial).double().numpy()


def pixel_rows(layer: nn.Module, nbhd: Neighborhood, x: Tensor, pixel: tuple[int, int], slot: int | None,
               top: int) -> tuple[list[PixelPick], str | None]:
    """The ``top`` pixels the query reads, ranked, and the score's metric (``None``: ranked by weight)."""
    weights = nbhd.query_map(nbhd.query_at(pixel), slot=slot).detach().double().numpy()
    read = np.flatnonzero(weights)
    selector = getattr(layer, "selector", None)
    if isinstance(selector, HardKNN) and selector.queries.is_identity:
        scores = knn_scores(selector, x, pixel)
        key = scores.ravel()[read] * (-1 if larger_is_nearer(selector.metric) else 1)
        order = read[np.lexsort((read, key))]  # nearest first, ties to the lower index
        if selector.self_first:
            own = pixel[0] * weights.shape[1] + pixel[1]
            order = np.concatenate([[own], order[order != own]]) if own in order else order
        return [PixelPick(i + 1, _rc(f, weights.shape), float(weights.flat[f]), float(scores.flat[f]))
                for i, f in enumerate(order[:top])], selector.metric
    order = read[np.lexsort((read, -weights.ravel()[read]))]  # heaviest first, ties to the lower index
    return [PixelPick(i + 1, _rc(f, weights.shape), float(weights.flat[f])) for i, f in enumerate(order[:top])], None


def patch_rows(nbhd: Neighborhood, pixel: tuple[int, int], slot: int | None, top: int) -> list[PatchPick]:
    """Per slot (N3: per volume), the ``top`` heaviest key patches: top-left pixel, centre, weight."""
    grid = nbhd.footprint.keys
    q = nbhd.query_at(pixel)
    rows = []
    for s in range(nbhd.num_slots) if slot is None else [slot]:
        w = nbhd.key_weights(q, slot=s).detach().double().numpy()
        read = np.flatnonzero(w)
        order = read[np.lexsort((read, -w[read]))][:top]
        for i, k in enumerate(order):
            g = np.unravel_index(int(k) % int(np.prod(grid.shape)), grid.shape)
            top_left = tuple(int(g[a] * grid.stride[a] + grid.offset[a]) for a in range(2))
            centre = tuple(float(top_left[a] + grid.dilation[a] * (grid.size[a] - 1) / 2) for a in range(2))
            rows.append(PatchPick(s, i + 1, top_left, centre, float(w[k])))
    return rows


def query_patch(nbhd: Neighborhood, pixel: tuple[int, int]) -> tuple[int, int]:
    """The top-left pixel of the query token located at ``pixel`` (an N3 query patch; the pixel itself otherwise)."""
    grid = nbhd.footprint.queries
    g = np.unravel_index(nbhd.query_at(pixel), grid.shape)
    return tuple(int(g[a] * grid.stride[a] + grid.offset[a]) for a in range(2))


def _rc(flat: int, shape: tuple[int, int]) -> tuple[int, int]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))
