"""The selector half of every layer."""

from __future__ import annotations

from torch import Tensor, nn

from .._checks import check_tensor
from ..neighborhood import Neighborhood


class Selector(nn.Module):
    """Maps a channels-first input to a :class:`~neighborhoods.Neighborhood`.

    Subclasses implement :meth:`forward`; ``x`` is ``(B, C, N)`` or ``(B, C, H, W)``, a set of
    tokens that also carry grid positions.
    """

    def forward(self, x: Tensor) -> Neighborhood:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def check_input(x: Tensor, spatial_dims: int | tuple[int, ...], name: str = "x") -> Tensor:
        """``x`` is a floating tensor ``(B, C, *spatial)`` with the given number of spatial axes."""
        dims = (spatial_dims,) if isinstance(spatial_dims, int) else spatial_dims
        return check_tensor(name, x, ndim=tuple(2 + d for d in dims))
