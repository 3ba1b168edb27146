"""The no-mixing control: each position's neighbourhood is the position itself.

``y_i = W x_i + b``: a window of one (``FixedSpatial`` with kernel 1) and per-slot weights
(``Conv1D``), i.e. a 1x1 convolution. Put where an operator that mixes positions would go, it
keeps that place's channel map and drops all exchange between positions, so an ablation can
show how much of a score the mixing itself earns (the "identity mixer" control of token-mixer
studies, e.g. Yu et al. 2022, "MetaFormer is actually what you need for vision", Sec. 4).
"""

from __future__ import annotations

import torch

from neighborhoods.paths import PathChoice

from .conv import _ConvNd
from .registry import Example, register


class _IdentityNd(_ConvNd):
    """What :class:`Identity1d` and :class:`Identity2d` share: ``Conv{1,2}d`` with a 1-wide kernel.

    Args:
        in_channels: C.
        out_channels: channels out (``None`` keeps C).
        bias: add a learned bias.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto") -> None:
        super().__init__(in_channels, in_channels if out_channels is None else out_channels, kernel_size=1,
                         bias=bias, device=device, dtype=dtype, path=path)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}"
        if self.bias is None:
            s += ", bias=False"
        return s + (f", path={self.path!r}" if self.path != "auto" else "")


class Identity1d(_IdentityNd):
    """No exchange between positions of a sequence, only the place's channel map.

    Shape:
        x: ``(B, C, N)`` -> ``(B, C_out, N)``.
    """

    spatial_dims = 1


class Identity2d(_IdentityNd):
    """No exchange between pixels, only the place's channel map (a 1x1 convolution).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, C_out, H, W)``.
    """

    spatial_dims = 2


register(Identity1d, family="control", example=Example(dict(in_channels=4, out_channels=6), (2, 4, 11)))
register(Identity2d, family="control", example=Example(dict(in_channels=4, out_channels=6), (2, 4, 7, 8)),
         aliases=["identity"])
