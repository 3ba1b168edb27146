"""``NeighborAggregator``: every layer in the zoo is a selector followed by a combiner."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .checks import check_choice, check_tensor
from ._reset import reset_submodules
from .combiners.base import Combiner
from .fast_paths import registry as fast_paths
from .neighborhood import Neighborhood
from .paths import PATHS, resolve_path
from .selectors.base import Selector


class NeighborAggregator(nn.Module):
    """Select neighbours for every query, then combine them: ``combiner(x, selector(x))``.

    Convolution, ConvNN, attention, the non-local block and the N3 block are all instances;
    the named layers in :mod:`operators` only choose the selector, the combiner and their
    defaults.

    Where a native kernel computes the configured (selector, combiner) pair, ``forward``
    uses it: the fast path registered for exactly these two types
    (:mod:`neighborhoods.fast_paths`), when its ``why_not`` accepts the configuration
    (:meth:`why_not_fast` says why not otherwise). The reference path through the explicit
    :class:`Neighborhood` is always available and is what the tests compare it against.

    Args:
        selector: a :class:`Selector`.
        combiner: a :class:`Combiner`.
        path: ``'auto'`` (fast path when one applies), ``'fast'`` (error, with the reason, if
            none does) or ``'reference'``. A :func:`~neighborhoods.use_path` block overrides
            it, and ``forward(..., path=...)`` overrides both (see :mod:`neighborhoods.paths`).

    Shape:
        x: ``(B, C, N)`` or ``(B, C, H, W)`` -> ``(B, C_out, *query_shape)``.
    """

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
    def fast_path(self) -> fast_paths.FastPath | None:
        """The fast path registered for exactly this (selector type, combiner type), if any."""
        return fast_paths.lookup(self.selector, self.combiner)

    def why_not_fast(self, x: Tensor | None = None, **kwargs: Any) -> str | None:
        """``None`` when the fast path computes this layer as configured, else a sentence saying why not.

        ``x`` (channels-first, as the aggregator sees it) and ``kwargs`` (the selector's
        forward keywords, e.g. ``mask``) may be given; the decision rests on the
        configuration and those keywords.
        """
        return fast_paths.why_not(self.selector, self.combiner, x, **kwargs)

    def fast_path_name(self, x: Tensor | None = None, **kwargs: Any) -> str | None:
        """The native kernel ``path='auto'`` takes (e.g. ``'F.conv2d'``), or ``None`` for the reference path."""
        entry = self.fast_path
        if entry is None or entry.why_not(self.selector, self.combiner, x, **kwargs) is not None:
            return None
        return entry.kernel_name(self.selector, self.combiner)

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

    def empty_output(self, x: Tensor) -> Tensor:
        """The output for an input with an empty spatial axis: no queries, so an empty tensor.

        ``(B, C_out, *selector.output_shape(spatial))``, which has a zero axis (the selector
        names the error otherwise). Neither path runs: a k-NN with no tokens, a degree over no
        keys or a convolution over a zero-width image has nothing to compute, and torch's own
        kernels reject such input. The result stays on the autograd graph of ``x`` (its
        gradient is an empty zero tensor), as any torch op on an empty tensor does.
        """
        shape = self.selector.output_shape(tuple(x.shape[2:]))
        if 0 not in shape:  # a selector whose padding invents positions on an empty axis
            raise ValueError(f"x has an empty spatial axis, shape {tuple(x.shape)}, but the layer would give a "
                             f"{shape} output of padding alone")
        return x.new_zeros((x.shape[0], self.combiner.out_channels, *shape)) + x.sum()

    def neighborhood(self, x: Tensor, **kwargs: Any) -> Neighborhood:
        """What the selector picks for ``x``: for inspection, plots and teaching."""
        return self.selector(x, **kwargs)

    def forward(self, x: Tensor, *, path: str | None = None, **kwargs: Any) -> Tensor:
        """Apply the layer. ``kwargs`` (e.g. an attention ``mask``) go to the selector."""
        path = resolve_path(path, self.path)
        self.check_input(x)
        if 0 in x.shape[2:]:
            return self.empty_output(x)
        if path != "reference":
            reason = self.why_not_fast(x, **kwargs)
            if reason is None:
                return self.fast_path.run(self.selector, self.combiner, x, **kwargs)
            if path == "fast":
                raise ValueError(f"path='fast' but {reason}; use path='auto' or 'reference'")
        return self.combiner(x, self.selector(x, **kwargs))

    def extra_repr(self) -> str:
        return "" if self.path == "auto" else f"path={self.path!r}"
