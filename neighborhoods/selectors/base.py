"""The selector half of every layer."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ..checks import check_tensor
from ..neighborhood import Neighborhood
from ..lifting import Liftable


class Selector(Liftable, nn.Module):
    """Maps a channels-first input to a :class:`~neighborhoods.Neighborhood`.

    Subclasses implement :meth:`forward`; ``x`` is ``(B, C, N)`` or ``(B, C, H, W)``, a set of
    tokens that also carry grid positions.
    """

    #: how keys are chosen: ``'fixed'`` (by position only), ``'hard content'`` (the k best by
    #: similarity), ``'soft content'`` (learned or softmax weights over a candidate set) or
    #: ``'dense'`` (a weight for every key)
    selection: ClassVar[str] = "dense"
    #: ``'local'`` (a window around the query) or ``'global'`` (anywhere in the input)
    locality: ClassVar[str] = "global"

    def forward(self, x: Tensor) -> Neighborhood:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The spatial shape of the layer's output for an input grid.

        The input's own grid for every selector whose queries are the input's tokens (or are
        folded back onto its pixels, as N3's patches are); windowed selectors with a stride
        override it.
        """
        return tuple(spatial_shape)

    def cost(self, fast: bool) -> str:
        """The cost class of selecting and aggregating, for N tokens: on the fast path or the reference one.

        ``'O(N k)'``: k keys per query; ``'O(N^2)'``: every pair of tokens.
        """
        return "O(N^2)"

    @staticmethod
    def check_input(x: Tensor, spatial_dims: int | tuple[int, ...], name: str = "x") -> Tensor:
        """``x`` is a floating tensor ``(B, C, *spatial)`` with the given number of spatial axes."""
        dims = (spatial_dims,) if isinstance(spatial_dims, int) else spatial_dims
        return check_tensor(name, x, ndim=tuple(2 + d for d in dims))
