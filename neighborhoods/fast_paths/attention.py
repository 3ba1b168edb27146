"""Dense affinities as ``F.scaled_dot_product_attention`` (softmax) or ``Q (K^T Z)`` (linear kernels)."""

from __future__ import annotations

from torch import Tensor

from ..combiners.graph_filter import CayleyFilter, GraphFilter
from ..combiners.weighted_mean import WeightedMean
from ..functional.attention import attention
from ..functional.stages import stage
from ..selectors.dense_affinity import DenseAffinity, check_mask
from ..selectors.softmax_all import SoftmaxAll
from .registry import fast_path

_SDPA = "F.scaled_dot_product_attention"
_DENSE = (DenseAffinity, SoftmaxAll)  # exact types: ConcatAffinity scores differently


def softmax_why_not(selector: DenseAffinity, combiner: WeightedMean, x: Tensor | None = None,
                    mask: Tensor | None = None) -> str | None:
    if selector.normalize != "softmax":
        return f"{_SDPA} normalises by a softmax; this selector has normalize={selector.normalize!r}"
    return None


@fast_path(_DENSE, WeightedMean, why_not=softmax_why_not, kernel=_SDPA)
def softmax_attention(selector: DenseAffinity, combiner: WeightedMean, x: Tensor,
                      mask: Tensor | None = None) -> Tensor:
    """Softmax over all keys + weighted mean of values = ``F.scaled_dot_product_attention``."""
    q, k = selector.project(x)
    v = combiner.values(x, selector.num_heads)
    mask = check_mask(mask, x.shape[0], selector.num_heads, q.shape[-2], k.shape[-2])
    with stage("fused"):  # scores, softmax and weighted mean in one kernel
        y = attention(q, k, v, mask, selector.scale)
    return combiner.finish(y, selector.output_shape(tuple(x.shape[2:])))


def _is_linear(selector: DenseAffinity) -> bool:
    return selector.kernel == "dot" and selector.normalize in ("none", "mean")


def graph_filter_why_not(selector: DenseAffinity, combiner: GraphFilter, x: Tensor | None = None,
                         mask: Tensor | None = None) -> str | None:
    if combiner.nodes != "positions":
        return f"the graph filter's nodes are {combiner.nodes!r}; the dense kernels act on positions"
    if selector.normalize == "softmax":
        return None
    if not _is_linear(selector):
        return (f"no native kernel computes kernel={selector.kernel!r} with normalize={selector.normalize!r}: "
                f"only a softmax ({_SDPA}) or the linear 'dot' kernel with 'none'/'mean' (Q (K^T Z))")
    if mask is not None:
        return "the linear kernel's Q (K^T Z) form takes no mask"
    return None


def _graph_filter_name(selector: DenseAffinity, combiner: GraphFilter) -> str:
    return _SDPA if selector.normalize == "softmax" else "Q @ (K^T @ Z)"


@fast_path(_DENSE, (GraphFilter, CayleyFilter), why_not=graph_filter_why_not, kernel=_graph_filter_name)
def dense_graph_filter(selector: DenseAffinity, combiner: GraphFilter, x: Tensor,
                       mask: Tensor | None = None) -> Tensor:
    """A graph filter on a dense affinity without the ``N x N`` matrix.

    Softmax: each application of A is ``F.scaled_dot_product_attention``. A linear kernel
    (``'dot'`` with ``'none'``/``'mean'``): ``A Z = Q (K^T Z)`` (times the scale), the order in
    which the double-attention block computes it (Chen et al. 2018, Eq. 4).
    """
    q, k = selector.project(x)
    mask = check_mask(mask, x.shape[0], selector.num_heads, q.shape[-2], k.shape[-2])
    if selector.normalize == "softmax":
        def propagate(z: Tensor) -> Tensor:
            return attention(q, k, z, mask, selector.scale)
    else:
        factor = selector.scale / (k.shape[-2] if selector.normalize == "mean" else 1)

        def propagate(z: Tensor) -> Tensor:
            return q @ (k.transpose(-1, -2) @ z) * factor
    shape = tuple(x.shape[2:]) if combiner.nodes == "entries" else selector.output_shape(tuple(x.shape[2:]))
    return combiner.filter(x, propagate, selector.num_heads, (q.shape[-2], k.shape[-2]), shape, selector.queries)
