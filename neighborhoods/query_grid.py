"""Strided queries: the output grid of a convolution, for layers whose keys are the whole input.

A convolution with a (2r+1)-wide window, stride ``s`` and padding ``p`` has its output
position ``g`` read the window centred on input coordinate ``g * s + r - p``; its output has
``floor((n + 2p - (2r+1)) / s) + 1 = floor((n - 1 - 2o) / s) + 1`` positions per axis with
``o = r - p``. A layer that picks neighbours for every query (ConvNN, attention, the
non-local block) downsamples the same way by placing its queries there, on the input's
tokens at ``o, o + s, o + 2s, ...``, while its keys stay the whole grid. ``o = 0`` (the
default) centres the queries as a 'same' convolution does; ``o < 0`` puts queries on zero
padding tokens outside the image (a convolution with more padding than its radius).

:class:`QueryGrid` holds ``stride`` and ``offset`` per axis; with stride 1 and offset 0 every
token is a query and layers take their unstrided code paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .checks import check_int_tuple
from .footprint import TokenGrid


@dataclass(frozen=True)
class QueryGrid:
    """Queries at input coordinates ``offset + g * stride`` on every axis (see the module docstring)."""

    stride: tuple[int, ...]
    offset: tuple[int, ...]

    @classmethod
    def of_conv(cls, ndim: int, stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str | None = None,
                radius: int = 0) -> QueryGrid:
        """The output grid of a convolution with a (2 radius + 1)-wide window, ``stride`` and ``padding``.

        ``padding`` is the convolution's: an int or tuple, ``'same'`` (stride 1 only, as torch
        allows), ``'valid'`` (0) or ``None``, which means ``radius`` (centred queries: 'same' at
        stride 1, ``ceil(n / s)`` outputs at stride s, as a 3x3 conv with padding 1 gives).
        """
        stride = check_int_tuple("stride", stride, ndim, minimum=1)
        if padding is None:
            pads = (radius,) * ndim
        elif isinstance(padding, str):
            if padding == "same":
                if any(s != 1 for s in stride):
                    raise ValueError(f"padding='same' needs stride 1 (as torch.nn.Conv2d), got stride={stride}")
                pads = (radius,) * ndim
            elif padding == "valid":
                pads = (0,) * ndim
            else:
                raise ValueError(f"padding must be an int, a tuple of ints, 'same', 'valid' or None, got {padding!r}")
        else:
            pads = check_int_tuple("padding", padding, ndim, minimum=0)
        return cls(stride, tuple(radius - p for p in pads))

    @property
    def ndim(self) -> int:
        return len(self.stride)

    @property
    def is_identity(self) -> bool:
        """Every token is a query, in order."""
        return all(s == 1 for s in self.stride) and all(o == 0 for o in self.offset)

    @property
    def overhang(self) -> int:
        """How far queries reach beyond the image (``-offset``, 0 when they stay inside)."""
        return max(0, *(-o for o in self.offset))

    def shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The queries' grid ``floor((n - 1 - 2 offset) / stride) + 1`` per axis; a named error if empty."""
        out = tuple((n - 1 - 2 * o) // s + 1 for n, s, o in zip(spatial_shape, self.stride, self.offset))
        if 0 in spatial_shape and min(out) >= 0 and all(m == 0 for m, n in zip(out, spatial_shape) if n == 0):
            return out  # an empty input gives an empty output (no queries), as a convolution's does
        if min(out, default=1) < 1:
            raise ValueError(f"x's spatial shape {tuple(spatial_shape)} is too small for stride={self.stride} with "
                             f"query offset {self.offset} (a convolution's padding): the output would be {out}")
        return out

    def coordinates(self, spatial_shape: tuple[int, ...], device: torch.device | None = None) -> list[Tensor]:
        """Per axis, the input coordinate of every query, ``(shape[a],)`` (negative or >= n in padding)."""
        return [o + s * torch.arange(m, device=device)
                for m, s, o in zip(self.shape(spatial_shape), self.stride, self.offset)]

    def flat_index(self, spatial_shape: tuple[int, ...], padding: int = 0,
                   device: torch.device | None = None) -> Tensor:
        """Row-major index of every query in the grid zero-padded by ``padding``, ``(prod(shape),)``."""
        if self.overhang > padding:
            raise ValueError(f"queries reach {self.overhang} tokens beyond the image (query offset {self.offset}) "
                             f"but the grid is padded by only {padding}")
        padded = [n + 2 * padding for n in spatial_shape]
        axes = [c + padding for c in self.coordinates(spatial_shape, device)]
        mesh = torch.meshgrid(*axes, indexing="ij")
        strides = [math.prod(padded[i + 1:]) for i in range(len(padded))]
        return sum(m.reshape(-1) * st for m, st in zip(mesh, strides))

    def token_grid(self, spatial_shape: tuple[int, ...]) -> TokenGrid:
        """The queries as pixels of the input, for :class:`~neighborhoods.footprint.PixelFootprint`."""
        d = self.ndim
        return TokenGrid(self.shape(spatial_shape), (1,) * d, self.stride, self.offset, (1,) * d)

    def take(self, x: Tensor) -> Tensor:
        """The queries' features of a channels-first ``x`` ``(B, C, *spatial)`` -> ``(B, C, *shape)``.

        Queries must lie inside the image (``offset >= 0``).
        """
        if self.overhang:
            raise ValueError(f"queries at offset {self.offset} lie outside the image; only a layer with padding "
                             f"tokens can place them there")
        spatial = tuple(x.shape[2:])
        index = tuple(slice(o, o + s * (m - 1) + 1, s) for m, s, o in zip(self.shape(spatial), self.stride,
                                                                        self.offset))
        return x[(slice(None), slice(None), *index)]

    def describe(self) -> str:
        """``stride=..., offset=...`` for a repr, empty for the identity grid."""
        if self.is_identity:
            return ""
        s = f"stride={self.stride if len(set(self.stride)) > 1 else self.stride[0]}"
        if any(self.offset):
            s += f", query_offset={self.offset}"
        return s

