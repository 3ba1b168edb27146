"""``NeighborAggregator``: every layer in the zoo is a selector followed by a combiner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from ._checks import check_choice, check_tensor
from ._reset import reset_submodules
from .combiners.base import Combiner
from .combiners.conv1d import Conv1D
from .combiners.graph_filter import GraphFilter
from .combiners.weighted_mean import WeightedMean
from .fast_paths import compact_taylor, dense_graph_filter, softmax_attention, spatial_knn_conv, window_conv
from .neighborhood import Neighborhood
from .selectors.base import Selector
from .selectors.compact_affinity import CompactAffinity
from .selectors.dense_affinity import DenseAffinity
from .selectors.fixed_spatial import FixedSpatial
from .selectors.hard_knn import HardKNN

FastPath = Callable[..., "Tensor | None"]

PATHS = ("auto", "fast", "reference")


class NeighborAggregator(nn.Module):
    """Select neighbours for every query, then combine them: ``combiner(x, selector(x))``.

    Convolution, ConvNN, attention, the non-local block and the N3 block are all instances;
    the named layers in :mod:`operators` only choose the selector, the combiner and their
    defaults.

    Where a (selector, combiner) pair is one that a native kernel computes, ``forward``
    uses that kernel (:attr:`FAST_PATHS`); the reference path through the explicit
    :class:`Neighborhood` is always available and is what the tests compare it against.

    Args:
        selector: a :class:`Selector`.
        combiner: a :class:`Combiner`.
        path: ``'auto'`` (fast path when one applies), ``'fast'`` (error if none does) or
            ``'reference'``; ``forward(..., path=...)`` overrides it per call.

    Shape:
        x: ``(B, C, N)`` or ``(B, C, H, W)`` -> ``(B, C_out, *query_shape)``.
    """

    #: The one table of fast paths: (selector type, combiner type) -> native twin. Looked
    #: up along both classes' MROs; a twin returns ``None`` for a configuration it does not cover.
    FAST_PATHS: ClassVar[dict[tuple[type, type], FastPath]] = {
        (FixedSpatial, Conv1D): window_conv,
        (HardKNN, Conv1D): spatial_knn_conv,
        (DenseAffinity, WeightedMean): softmax_attention,
        # GraphFilter is a WeightedMean: the MRO lookup finds this more specific entry first
        (DenseAffinity, GraphFilter): dense_graph_filter,
        (CompactAffinity, GraphFilter): compact_taylor,
    }

    def __init__(self, selector: Selector, combiner: Combiner, path: str = "auto") -> None:
        super().__init__()
        if not isinstance(selector, Selector):
            raise TypeError(f"selector must be a neighborhoods Selector, got {type(selector).__name__}")
        if not isinstance(combiner, Combiner):
            raise TypeError(f"combiner must be a neighborhoods Combiner, got {type(combiner).__name__}")
        self.selector = selector
        self.combiner = combiner
        self.path = check_choice("path", path, PATHS)

    @property
    def fast_path(self) -> FastPath | None:
        """The native twin registered for this (selector, combiner) pair, if any."""
        for s in type(self.selector).__mro__:
            for c in type(self.combiner).__mro__:
                if (s, c) in self.FAST_PATHS:
                    return self.FAST_PATHS[(s, c)]
        return None

    def reset_parameters(self) -> None:
        """Re-initialise every part that knows how: the selector's and the combiner's modules."""
        reset_submodules(self)

    def check_input(self, x: Tensor) -> None:
        """A tensor of a rank the selector reads, with the channels the combiner was built for.

        Runs before either half, so a wrong channel count is a ``ValueError`` naming
        ``in_channels`` rather than a matmul or convolution ``RuntimeError`` from a projection.
        """
        dims = getattr(self, "spatial_dims", None)  # the named layers' 1-D / 2-D twins declare it
        check_tensor("x", x, ndim=None if dims is None else 2 + dims)
        if x.ndim >= 2:  # a rank the selector does not read is its error to name
            self.combiner.check_input(x)

    def neighborhood(self, x: Tensor, **kwargs: Any) -> Neighborhood:
        """What the selector picks for ``x``: for inspection, plots and teaching."""
        return self.selector(x, **kwargs)

    def forward(self, x: Tensor, *, path: str | None = None, **kwargs: Any) -> Tensor:
        """Apply the layer. ``kwargs`` (e.g. an attention ``mask``) go to the selector."""
        path = self.path if path is None else check_choice("path", path, PATHS)
        self.check_input(x)
        if path != "reference":
            twin = self.fast_path
            out = twin(self.selector, self.combiner, x, **kwargs) if twin is not None else None
            if out is not None:
                return out
            if path == "fast":
                raise ValueError(f"path='fast' but no native kernel covers {type(self.selector).__name__} + "
                                 f"{type(self.combiner).__name__} as configured; use path='auto' or 'reference'")
        return self.combiner(x, self.selector(x, **kwargs))

    def extra_repr(self) -> str:
        return "" if self.path == "auto" else f"path={self.path!r}"
