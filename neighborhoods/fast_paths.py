"""Native-kernel twins of reference configurations.

Each function computes exactly what ``combiner(x, selector(x))`` computes, through one
native op, or returns ``None`` when this particular configuration is not one the op covers
(the aggregator then takes the reference path). The table that maps (selector type,
combiner type) to these functions lives in :mod:`neighborhoods.aggregator`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .combiners.conv1d import Conv1D
from .combiners.graph_filter import GraphFilter
from .combiners.weighted_mean import WeightedMean
from .functional.taylor import entry_features
from .selectors.compact_affinity import CompactAffinity
from .selectors.fixed_spatial import FixedSpatial
from .selectors.hard_knn import HardKNN
from .selectors.dense_affinity import DenseAffinity, check_mask

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def window_conv(selector: FixedSpatial, combiner: Conv1D, x: Tensor) -> Tensor | None:
    """Fixed window + per-slot weights = ``F.conv{1,2,3}d`` (after ``F.pad`` for non-zero modes)."""
    if combiner.num_slots != selector.num_taps:
        return None  # the reference path raises the descriptive error
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


def spatial_knn_conv(selector: HardKNN, combiner: Conv1D, x: Tensor) -> Tensor | None:
    """k-NN by Chebyshev distance on positions, slots in raster order = a 'same' convolution.

    With ``k = (2r+1)^d`` over a grid zero-padded by at least ``r``, the k nearest positions of
    every token are exactly its (2r+1)-wide window (ConvNN's 'location' similarity), so the
    layer is ``F.conv{1,2}d(x, W.reshape(..., 2r+1, 2r+1), padding=r)``.
    """
    width = round(combiner.num_slots ** (1 / selector.ndim))
    radius = (width - 1) // 2
    if not (selector.space == "positions" and selector.metric == "chebyshev" and selector.order == "index"
            and selector.sampling == "all" and width % 2 == 1 and width ** selector.ndim == selector.k
            and selector.k == combiner.num_slots and selector.padding >= radius and combiner.groups == 1):
        return None
    selector.check_input(x, selector.ndim)
    combiner.check_input(x)
    weight = combiner.weight.reshape(*combiner.weight.shape[:2], *(width,) * selector.ndim)
    return _CONV[selector.ndim](x, weight, combiner.bias, 1, radius)


def softmax_attention(selector: DenseAffinity, combiner: WeightedMean, x: Tensor,
                      mask: Tensor | None = None) -> Tensor | None:
    """Softmax over all keys + weighted mean of values = ``F.scaled_dot_product_attention``."""
    if selector.normalize != "softmax" or type(selector).affinity is not DenseAffinity.affinity:
        return None  # another normalisation, or a subclass that scores differently: no native twin
    q, k = selector.project(x)
    v = combiner.values(x, selector.num_heads)
    mask = check_mask(mask, x.shape[0], selector.num_heads, q.shape[-2], k.shape[-2])
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=selector.scale)
    return combiner.finish(y, tuple(x.shape[2:]))


def dense_graph_filter(selector: DenseAffinity, combiner: GraphFilter, x: Tensor,
                       mask: Tensor | None = None) -> Tensor | None:
    """A graph filter on a dense affinity without the ``N x N`` matrix where a native form exists.

    Softmax: each application of A is ``F.scaled_dot_product_attention``. A linear kernel
    (``'dot'`` with ``'none'``/``'mean'``): ``A Z = Q (K^T Z)`` (times the scale), the order in
    which the double-attention block computes it (Chen et al. 2018, Eq. 4).
    """
    if type(selector).affinity is not DenseAffinity.affinity or combiner.nodes != "positions":
        return None
    q, k = selector.project(x)
    mask = check_mask(mask, x.shape[0], selector.num_heads, q.shape[-2], k.shape[-2])
    if selector.normalize == "softmax":
        def propagate(z: Tensor) -> Tensor:
            return F.scaled_dot_product_attention(q, k, z, attn_mask=mask, scale=selector.scale)
    elif selector.kernel == "dot" and selector.normalize in ("none", "mean") and mask is None:
        factor = selector.scale / (k.shape[-2] if selector.normalize == "mean" else 1)

        def propagate(z: Tensor) -> Tensor:
            return q @ (k.transpose(-1, -2) @ z) * factor
    else:
        return None
    return combiner.filter(x, propagate, selector.num_heads, (q.shape[-2], k.shape[-2]), tuple(x.shape[2:]))


def compact_taylor(selector: CompactAffinity, combiner: GraphFilter, x: Tensor) -> Tensor | None:
    """CGNL without the ``Nc x Nc`` matrix: ``A^f z = sum_p phi_p(a) (phi_p(b)^T z)``.

    The kernel's separable features (:func:`~neighborhoods.functional.taylor.entry_features`,
    the Taylor expansion of Yue et al. 2018, Sec. 3.3) turn each application of A^f into two
    thin matrix products; ``'row'`` normalisation divides by ``phi(a) (phi(b)^T 1)``.
    """
    if combiner.nodes != "entries":
        return None
    a, b = selector.entries(x)
    fa, fb = (entry_features(t, selector.kernel, selector.order, selector.gamma) for t in (a, b))  # (b, g, n, p)
    if selector.normalize == "row":
        denominator = fa @ fb.sum(-2).unsqueeze(-1)
    else:
        denominator = fb.shape[-2] if selector.normalize == "mean" else 1

    def propagate(z: Tensor) -> Tensor:
        return fa @ (fb.transpose(-1, -2) @ z) / denominator

    return combiner.filter(x, propagate, selector.groups, (a.shape[-1], b.shape[-1]), tuple(x.shape[2:]))
