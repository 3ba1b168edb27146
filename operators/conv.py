"""Convolution as a NeighborAggregator: a fixed window (``FixedSpatial``) + per-slot weights (``Conv1D``).

Drop-in for ``torch.nn.Conv1d`` / ``Conv2d``: same constructor arguments and state_dict keys
(``weight`` ``(C_out, C_in / groups, *kernel_size)``, ``bias``). ``forward`` uses
``F.conv{1,2}d``; ``forward(x, path="reference")`` runs the explicit neighbourhood instead.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from neighborhoods import NeighborAggregator
from neighborhoods.checks import check_int_tuple
from neighborhoods.combiners import Conv1D
from neighborhoods.lifting import lift
from neighborhoods.selectors import FixedSpatial
from neighborhoods.functional.windows import PaddingMode
from neighborhoods.paths import PathChoice

from .registry import Example, register

class ConvWeights:
    """A layer with a Conv1D combiner holding ``weight`` and ``bias`` itself, as torch's convs do.

    :meth:`hold_weights` lifts the combiner's parameters onto the layer
    (:func:`neighborhoods.lifting.lift`): they are real ``nn.Parameter`` attributes of the
    layer, the state_dict keys are ``weight`` / ``bias``, and ``weight_norm``,
    ``spectral_norm``, ``prune`` and ``functional_call`` act on what the combiner computes with.
    """

    combiner: Conv1D
    weight: nn.Parameter
    bias: nn.Parameter | None

    def hold_weights(self) -> None:
        lift(self.combiner, "weight", self)
        lift(self.combiner, "bias", self)

    @property
    def in_channels(self) -> int:
        return self.combiner.in_channels

    @property
    def out_channels(self) -> int:
        return self.combiner.out_channels

    def reset_parameters(self) -> None:
        self.combiner.reset_parameters()


class _ConvNd(ConvWeights, NeighborAggregator):
    """What :class:`Conv1d` and :class:`Conv2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    spatial_dims: ClassVar[int]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...],
                 stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str = 0,
                 dilation: int | tuple[int, ...] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: PaddingMode = "zeros", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, path: PathChoice = "auto") -> None:
        kernel = check_int_tuple("kernel_size", kernel_size, self.spatial_dims, minimum=1)
        super().__init__(
            FixedSpatial(kernel, stride, padding, dilation, padding_mode, ndim=self.spatial_dims),
            Conv1D(in_channels, out_channels, kernel, groups=groups, bias=bias, device=device, dtype=dtype),
            path=path,
        )
        self.hold_weights()

    def extra_repr(self) -> str:
        # torch.nn.Conv*'s repr: channels, then the window, then what differs from the defaults
        s = f"{self.in_channels}, {self.out_channels}, {self.selector.extra_repr()}"
        if self.combiner.groups != 1:
            s += f", groups={self.combiner.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s + (f", path={self.path!r}" if self.path != "auto" else "")


class Conv1d(_ConvNd):
    """``torch.nn.Conv1d`` as a fixed-window NeighborAggregator.

    Same constructor arguments as ``torch.nn.Conv1d``; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, C_out, N after the window)``.
    """

    spatial_dims = 1


class Conv2d(_ConvNd):
    """``torch.nn.Conv2d`` as a fixed-window NeighborAggregator.

    Same constructor arguments as torch's; the registry entry ``conv2d`` adds the
    defaults ``kernel_size=3, padding='same'`` (and ``out_channels = in_channels``), so
    ``operators.create("conv2d", in_channels=C)`` is complete.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, C_out, H, W after the window)``.
    """

    spatial_dims = 2


#: registry defaults that make ``create("conv2d", in_channels=C)`` complete: a 3x3 'same' window
SAME_3X3 = {"kernel_size": 3, "padding": "same"}
register(Conv1d, family="convolution", example=Example(dict(in_channels=4, out_channels=6), (2, 4, 11)),
         **SAME_3X3)
register(Conv2d, family="convolution", example=Example(dict(in_channels=4, out_channels=6), (2, 4, 7, 8)),
         **SAME_3X3)
