"""One query's weights on the photo's pixels, through the layer's own inspection API."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

from neighborhoods import Neighborhood


def neighborhood_of(layer: nn.Module, x: Tensor) -> Neighborhood:
    """``layer.neighborhood(x)``; a layer without one (e.g. ``BranchingConv2d``) is an error naming it."""
    if not hasattr(layer, "neighborhood"):
        raise ValueError(f"{type(layer).__name__} has no neighborhood(x): it is not a single select-then-combine "
                         f"operator, so there is no one neighbourhood to draw")
    return layer.neighborhood(x)


def pixel_map(nbhd: Neighborhood, pixel: tuple[int, int], slot: int | None = None) -> np.ndarray:
    """``(H, W)`` float64: the weight each input pixel gets from the query located at ``pixel``.

    ``slot=None`` sums the slots (a hard layer's map is 1 on each chosen pixel); heads are
    averaged, as ``nn.MultiheadAttention`` averages its returned weights.
    """
    return nbhd.query_map(nbhd.query_at(pixel), slot=slot).detach().double().numpy()
