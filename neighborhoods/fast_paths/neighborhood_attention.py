"""Neighbourhood attention as ``F.scaled_dot_product_attention`` with the window as a bool mask."""

from __future__ import annotations

import math

from torch import Tensor

from ..combiners.weighted_mean import WeightedMean
from ..functional.attention import attention
from ..functional.neighborhood_window import window_mask
from ..selectors.neighborhood_window import NeighborhoodWindow
from .registry import fast_path

#: the most tokens for which the masked kernel is used: it scores all N^2 pairs, the reference
#: path gathers N k. On a 2-core CPU (forward + backward, C=32, 4 heads, 7x7 window, B=2) the
#: masked kernel was faster at 48x48 (1.0 s against 1.3 s) and slower at 64x64 (2.6 s against 0.8 s)
MAX_MASKED_TOKENS = 48 * 48


def window_why_not(selector: NeighborhoodWindow, combiner: WeightedMean, x: Tensor | None = None) -> str | None:
    if x is not None and math.prod(x.shape[2:]) > MAX_MASKED_TOKENS:
        return (f"the masked-attention kernel scores all N^2 pairs; with N={math.prod(x.shape[2:])} tokens "
                f"(> {MAX_MASKED_TOKENS}) the reference path's N k window gather is cheaper")
    return None


@fast_path(NeighborhoodWindow, WeightedMean, why_not=window_why_not, kernel="F.scaled_dot_product_attention")
def masked_window_attention(selector: NeighborhoodWindow, combiner: WeightedMean, x: Tensor) -> Tensor:
    """Softmax over the window + weighted mean of values = SDPA with the window as its mask.

    A key outside the window gets ``-inf`` before the softmax, so its weight is exactly 0 and
    the softmax over the remaining ``K`` keys is the window's.
    """
    selector.check_fits(x)
    q, k = selector.project(x)
    v = combiner.values(x, selector.num_heads)
    mask = window_mask(selector.window(x), q.shape[-2])
    y = attention(q, k, v, mask, selector.scale)  # SDPA, with an exact second derivative
    return combiner.finish(y, tuple(x.shape[2:]))
