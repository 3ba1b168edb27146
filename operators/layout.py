"""Run a layer written for another input layout on channels-first maps: what :func:`operators.swap` wraps.

A convolution takes ``(B, C, *spatial)``. A sequence operator (``ConvNN1d``, ``NonLocalBlock1d``)
takes ``(B, C, N)``, and ``SelfAttention`` takes ``torch.nn.MultiheadAttention``'s ``(B, N, E)``.
:class:`LayoutAdapter` flattens the positions in row-major (raster) order, ``N = H * W``,
runs the layer, and puts the positions back, so such a layer can stand where a convolution
stood: a token mixer over an image's pixels, as a Vision Transformer mixes its patch grid.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

#: the layouts a wrapped layer may take (the channels-first map itself needs no wrapper)
SEQUENCE_LAYOUTS = ("(B, C, N)", "(B, N, E)")


class LayoutAdapter(nn.Module):
    """``layer`` (taking ``layout``) applied to a channels-first map's positions as one sequence.

    Args:
        layer: the wrapped module; its parameters are this module's under ``layer.``.
        layout: the layer's input layout, ``'(B, C, N)'`` or ``'(B, N, E)'``.

    Shape:
        x: ``(B, C, *spatial)`` -> ``(B, C_out, *spatial)``; the layer sees
        ``(B, C, prod(spatial))`` or ``(B, prod(spatial), C)`` and must keep the positions.
    """

    def __init__(self, layer: nn.Module, layout: str) -> None:
        super().__init__()
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer must be an nn.Module, got {type(layer).__name__}")
        if layout not in SEQUENCE_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(SEQUENCE_LAYOUTS)}, got {layout!r}")
        self.layer, self.layout = layer, layout

    def forward(self, x: Tensor) -> Tensor:
        spatial = x.shape[2:]
        if self.layout == "(B, C, N)":
            y = self.layer(x.flatten(2))
            return y.unflatten(2, spatial)
        y = self.layer(rearrange(x.flatten(2), "b c n -> b n c"))
        return rearrange(y, "b n c -> b c n").unflatten(2, spatial)

    def extra_repr(self) -> str:
        return f"layout={self.layout}"
