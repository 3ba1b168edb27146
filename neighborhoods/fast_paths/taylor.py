"""CGNL's entry affinity through its separable (Taylor) features, never the ``Nc x Nc`` matrix."""

from __future__ import annotations

from torch import Tensor

from ..combiners.graph_filter import GraphFilter
from ..functional.taylor import entry_features
from ..selectors.compact_affinity import CompactAffinity
from .registry import fast_path


def taylor_why_not(selector: CompactAffinity, combiner: GraphFilter, x: Tensor | None = None) -> str | None:
    if combiner.nodes != "entries":
        return (f"the separable form applies A^f to (channel, position) entries; the graph filter has "
                f"nodes={combiner.nodes!r}")
    return None


@fast_path(CompactAffinity, GraphFilter, why_not=taylor_why_not, kernel="phi(a) @ (phi(b)^T @ z) (Taylor features)")
def compact_taylor(selector: CompactAffinity, combiner: GraphFilter, x: Tensor) -> Tensor:
    """CGNL without the ``Nc x Nc`` matrix: ``A^f z = sum_p phi_p(a) (phi_p(b)^T z)``.

    The kernel's separable features (:func:`~neighborhoods.functional.taylor.entry_features`,
    the Taylor expansion of Yue et al. 2018, Sec. 3.3) turn each application of A^f into two
    thin matrix products; ``'row'`` normalisation divides by ``phi(a) (phi(b)^T 1)``.
    """
    a, b = selector.entries(x)
    fa, fb = (entry_features(t, selector.kernel, selector.order, selector.gamma) for t in (a, b))  # (b, g, n, p)
    if selector.normalize == "row":
        denominator = fa @ fb.sum(-2).unsqueeze(-1)
    else:
        denominator = fb.shape[-2] if selector.normalize == "mean" else 1

    def propagate(z: Tensor) -> Tensor:
        return fa @ (fb.transpose(-1, -2) @ z) / denominator

    return combiner.filter(x, propagate, selector.groups, (a.shape[-1], b.shape[-1]), tuple(x.shape[2:]))
