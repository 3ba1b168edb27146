"""Fixed windows (and ConvNN's location k-NN) with per-slot weights as ``F.conv{1,2,3}d``.

:func:`spatial_knn_conv` is registered for ``(HardKNN, Conv1D)`` by :mod:`.hard_knn`, which
also serves the content k-NN configurations of that pair.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..combiners.conv1d import Conv1D
from ..selectors.fixed_spatial import FixedSpatial
from ..selectors.hard_knn import HardKNN
from .registry import fast_path

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _conv_name(selector: FixedSpatial | HardKNN, combiner: Conv1D) -> str:
    return f"F.conv{selector.ndim}d"


def window_why_not(selector: FixedSpatial, combiner: Conv1D, x: Tensor | None = None) -> str | None:
    if combiner.num_slots != selector.num_taps:
        return (f"the Conv1D weight has {combiner.num_slots} slots but the window {selector.num_taps} taps "
                f"(kernel_size={selector.kernel_size}); the reference path says what is wrong")
    return None


@fast_path(FixedSpatial, Conv1D, why_not=window_why_not, kernel=_conv_name)
def window_conv(selector: FixedSpatial, combiner: Conv1D, x: Tensor) -> Tensor:
    """Fixed window + per-slot weights = ``F.conv{1,2,3}d`` (after ``F.pad`` for non-zero modes)."""
    selector.check_input(x, selector.ndim)
    combiner.check_input(x)
    selector.output_shape(tuple(x.shape[2:]))  # same "input too small" error as the reference path
    weight = combiner.weight.reshape(*combiner.weight.shape[:2], *selector.kernel_size)
    pads = selector.pad_pairs
    if selector.padding_mode == "zeros" and all(lo == hi for lo, hi in pads):
        padding = tuple(lo for lo, _ in pads)
    else:
        flat = [p for pair in reversed(pads) for p in pair]  # F.pad lists the last axis first
        mode = "constant" if selector.padding_mode == "zeros" else selector.padding_mode
        x = F.pad(x, flat, mode=mode)
        padding = 0
    return _CONV[selector.ndim](x, weight, combiner.bias, selector.stride, padding, selector.dilation,
                                combiner.groups)


def _window_width(selector: HardKNN, combiner: Conv1D) -> int:
    return round(combiner.num_slots ** (1 / selector.ndim))


def location_why_not(selector: HardKNN, combiner: Conv1D, x: Tensor | None = None) -> str | None:
    width = _window_width(selector, combiner)
    radius = (width - 1) // 2
    fixed = {"space": "positions", "metric": "chebyshev", "order": "index", "sampling": "all"}
    for name, want in fixed.items():
        if getattr(selector, name) != want:
            return (f"only {name}={want!r} makes the k nearest tokens a fixed window "
                    f"(space='positions', metric='chebyshev', order='index', sampling='all'); got "
                    f"{name}={getattr(selector, name)!r}")
    if selector.k != combiner.num_slots:
        return f"the selector's k={selector.k} differs from the Conv1D weight's {combiner.num_slots} slots"
    if width % 2 == 0 or width ** selector.ndim != selector.k:
        return (f"k={selector.k} is not (2r+1)^{selector.ndim} for an integer r, so the k nearest positions "
                f"are not a square window")
    reach = radius - min(selector.queries.offset)  # how far the windows of the outermost queries extend
    if selector.padding < reach:
        return (f"padding={selector.padding} is less than the {reach} tokens the windows reach beyond the image "
                f"(radius {radius}, query offset {selector.queries.offset}): border queries would pick farther "
                f"positions instead of zero padding")
    if combiner.groups != 1:
        return f"a grouped Conv1D (groups={combiner.groups}) is not covered"
    return None


def spatial_knn_conv(selector: HardKNN, combiner: Conv1D, x: Tensor) -> Tensor:
    """k-NN by Chebyshev distance on positions, slots in raster order = a convolution.

    With ``k = (2r+1)^d`` over a grid zero-padded far enough, the k nearest positions of every
    query are exactly its (2r+1)-wide window (ConvNN's 'location' similarity), so the layer is
    ``F.conv{1,2}d(x, W.reshape(..., 2r+1, 2r+1), stride=s, padding=r - o)`` for queries on the
    strided grid ``o + g s`` (:class:`~neighborhoods.query_grid.QueryGrid`; 'same' when s = 1, o = 0).
    """
    # the input was checked once, by the aggregator (rank: hard_knn_why_not)
    width = _window_width(selector, combiner)
    weight = combiner.weight.reshape(*combiner.weight.shape[:2], *(width,) * selector.ndim)
    grid = selector.queries
    grid.shape(tuple(x.shape[2:]))  # the reference path's error for an input too small for the stride
    padding = tuple((width - 1) // 2 - o for o in grid.offset)
    return _CONV[selector.ndim](x, weight, combiner.bias, grid.stride, padding)
