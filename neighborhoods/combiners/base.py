"""The combiner half of every layer."""

from __future__ import annotations

from torch import Tensor, nn

from ..checks import check_channels
from ..neighborhood import Neighborhood
from ..lifting import Liftable


class Combiner(Liftable, nn.Module):
    """Maps an input and a :class:`~neighborhoods.Neighborhood` to the layer's output.

    Combiners are written against :meth:`Neighborhood.aggregate` only, so each works with
    every selector. ``x`` is channels-first ``(B, C, *spatial)``; the output is
    ``(B, C_out, *nbhd.query_shape)``.
    """

    #: channels of the input ``x`` (every combiner sets it)
    in_channels: int

    def check_input(self, x: Tensor) -> None:
        """``x`` has the ``in_channels`` the layer was built for (a named error before any projection runs)."""
        check_channels("x", x, self.in_channels)

    def forward(self, x: Tensor, nbhd: Neighborhood) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

