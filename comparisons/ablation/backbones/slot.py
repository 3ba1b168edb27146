"""The place in a backbone where the chosen operator goes, and the check that it fits there.

A backbone knows the shape at each of its places, ``(B, C_in, H, W) -> (B, C_out, H, W)``;
the operator may expect images, channels-first sequences or ``(B, N, E)`` token matrices.
:class:`OperatorSlot` converts between the two layouts and checks the output shape, so an
operator that cannot fit raises an error that names the operator, the backbone and the place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from einops import rearrange
from torch import Tensor, nn

if TYPE_CHECKING:
    from ..specs import LayerFactory

LAYOUTS = ("(B, C, H, W)", "(B, C, N)", "(B, N, E)")


class OperatorDoesNotFit(ValueError):
    """The operator cannot be built for, or run at, a place of a backbone."""


class OperatorSlot(nn.Module):
    """Holds the layer ``factory`` builds for one place of a backbone.

    Args:
        factory: the operator, resolved for this backbone (it says its layout and builds the layer).
        in_channels, out_channels: the place's channels.
        size: the place's spatial size ``(H, W)`` (the ViT's token grid).
        backbone, place: names for error messages, e.g. ``'vgg11'``, ``'features.3'``.

    Shape:
        x: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, factory: LayerFactory, in_channels: int, out_channels: int, size: tuple[int, int],
                 backbone: str, place: str) -> None:
        super().__init__()
        self.label, self.backbone, self.place = factory.label, backbone, place
        self.in_channels, self.out_channels, self.size = in_channels, out_channels, tuple(size)
        self.layout = factory.layout
        if self.layout not in LAYOUTS:
            raise self._error(f"its input layout {self.layout} is none of {', '.join(LAYOUTS)}")
        try:
            self.op = factory(in_channels, out_channels, self.size)
        except (ValueError, TypeError) as err:
            raise self._error(f"building it for {in_channels} -> {out_channels} channels failed: {err}") from err

    def _error(self, why: str) -> OperatorDoesNotFit:
        return OperatorDoesNotFit(f"operator {self.label!r} does not fit backbone {self.backbone!r} at "
                                  f"{self.place} (B, {self.in_channels}, {self.size[0]}, {self.size[1]}) -> "
                                  f"(B, {self.out_channels}, {self.size[0]}, {self.size[1]}): {why}")

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        try:
            if self.layout == "(B, C, H, W)":
                y = self.op(x)
            elif self.layout == "(B, C, N)":
                y = rearrange(self.op(rearrange(x, "b c h w -> b c (h w)")), "b c (h w) -> b c h w", h=h, w=w)
            else:
                y = rearrange(self.op(rearrange(x, "b c h w -> b (h w) c")), "b (h w) c -> b c h w", h=h, w=w)
        except (ValueError, TypeError, RuntimeError, IndexError) as err:
            raise self._error(f"{type(err).__name__}: {err}") from err
        if tuple(y.shape) != (x.shape[0], self.out_channels, h, w):
            raise self._error(f"it maps {tuple(x.shape)} to {tuple(y.shape)}")
        return y

    def extra_repr(self) -> str:
        return f"{self.label!r}, {self.in_channels} -> {self.out_channels}, layout={self.layout}"
