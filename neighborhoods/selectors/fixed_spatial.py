"""Convolution's selector: a fixed window around every output position."""

from __future__ import annotations

import math

from torch import Tensor

from ..checks import check_choice, check_int_tuple
from ..footprint import PixelFootprint, TokenGrid
from ..functional.windows import PADDING_MODES, output_size, window_index
from ..neighborhood import Neighborhood
from .base import Selector


def resolve_padding(padding: int | tuple[int, ...] | str, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                    dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """``(before, after)`` per axis for an int, a tuple, ``'valid'`` or ``'same'`` (as torch.nn.Conv*)."""
    ndim = len(kernel_size)
    if isinstance(padding, str):
        check_choice("padding", padding, ("same", "valid"))
        if padding == "valid":
            return ((0, 0),) * ndim
        if any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride=1 on every axis (as in torch), got stride={stride}")
        # torch puts the odd extra pad after, for even effective kernels
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    pads = check_int_tuple("padding", padding, ndim, minimum=0)
    return tuple((p, p) for p in pads)


class FixedSpatial(Selector):
    """The window a convolution reads: ``prod(kernel_size)`` taps around each output position.

    The slots follow the kernel's row-major order, so a Conv1D combiner whose weight is a
    conv weight ``(C_out, C_in/groups, *kernel_size)`` reproduces the convolution exactly.
    Out-of-image taps are invalid (zero) with ``padding_mode='zeros'``; other modes map
    them back into the image as ``F.pad`` does.

    Args mirror ``torch.nn.Conv{1,2}d``: ``kernel_size, stride, padding`` (int, tuple,
    ``'same'`` or ``'valid'``), ``dilation``, ``padding_mode``; ``ndim`` is the number of
    spatial axes (1 or 2).

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with static ``index`` ``(Nq, K)``.
    """

    def __init__(self, kernel_size: int | tuple[int, ...], stride: int | tuple[int, ...] = 1,
                 padding: int | tuple[int, ...] | str = 0, dilation: int | tuple[int, ...] = 1,
                 padding_mode: str = "zeros", ndim: int = 2) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got ndim={ndim!r}")
        self.ndim = ndim
        self.kernel_size = check_int_tuple("kernel_size", kernel_size, ndim, minimum=1)
        self.stride = check_int_tuple("stride", stride, ndim, minimum=1)
        self.dilation = check_int_tuple("dilation", dilation, ndim, minimum=1)
        self.padding = padding
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        self.pad_pairs = resolve_padding(padding, self.kernel_size, self.stride, self.dilation)

    @property
    def num_taps(self) -> int:
        return math.prod(self.kernel_size)

    def output_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output grid for an input grid, as ``torch.nn.Conv*`` computes it.

        An empty input (an axis of size 0) gives an empty output when the formula gives 0 on
        that axis (e.g. ``padding='same'``); otherwise, an output that would be empty or
        negative, or padding alone producing positions from an empty axis, is a named error.
        """
        out = tuple(output_size(*args) for args in zip(spatial_shape, self.kernel_size, self.stride,
                                                        self.pad_pairs, self.dilation))
        empty_in = [i for i, n in enumerate(spatial_shape) if n == 0]
        if empty_in and min(out) >= 0 and any(out[i] == 0 for i in empty_in):
            return out
        if min(out) < 1:
            raise ValueError(f"x's spatial shape {spatial_shape} is too small for kernel_size={self.kernel_size}, "
                             f"dilation={self.dilation}, padding={self.padding!r}: the output would be {out}")
        return out

    def forward(self, x: Tensor) -> Neighborhood:
        self.check_input(x, self.ndim)
        spatial = tuple(x.shape[2:])
        self.output_shape(spatial)
        index, valid, out_shape = window_index(spatial, self.kernel_size, self.stride, self.pad_pairs,
                                               self.dilation, self.padding_mode, device=x.device)
        # a query sits on the window it reads (taps in padding included: they reach no pixel)
        windows = TokenGrid(out_shape, self.kernel_size, self.stride, tuple(-lo for lo, _ in self.pad_pairs),
                            self.dilation)
        return Neighborhood(num_keys=math.prod(spatial), query_shape=out_shape, index=index, valid=valid,
                            footprint=PixelFootprint(spatial, TokenGrid.pixels(spatial), windows))

    selection = "fixed"
    locality = "local"

    def cost(self, fast: bool) -> str:
        return "O(N k)"

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != 0:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.ndim:
            s += f", dilation={self.dilation}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s
