"""The combiner half of every layer."""

from __future__ import annotations

from torch import Tensor, nn

from ..neighborhood import Neighborhood


class Combiner(nn.Module):
    """Maps an input and a :class:`~neighborhoods.Neighborhood` to the layer's output.

    Combiners are written against :meth:`Neighborhood.aggregate` only, so each works with
    every selector. ``x`` is channels-first ``(B, C, *spatial)``; the output is
    ``(B, C_out, *nbhd.query_shape)``.
    """

    def forward(self, x: Tensor, nbhd: Neighborhood) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

