"""Attention's combiner: a weighted mean of (projected) values."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ..checks import check_divisible, check_int, check_tensor
from .._reset import reset_submodules
from ..neighborhood import Neighborhood
from ..pointwise import ChannelLinear
from ..tokens import from_tokens, to_tokens
from .base import Combiner


class WeightedMean(Combiner):
    """``y_q = W_o (1/S) sum_s sum_m w_{q,m,s} W_v x_m`` (Vaswani et al. 2017, Eq. 1 with Eq. 2's W^O).

    With a softmax-over-all-keys neighbourhood (S = 1) this is attention's ``A V W_o``;
    with any other selector it is the mean of that selector's slot volumes of ``W_v x``.
    The value channels are split into the neighbourhood's heads and merged afterwards.

    Args:
        in_channels: C of the input.
        value_channels: channels of ``W_v x`` (default ``in_channels``).
        out_channels: channels of the output (default ``value_channels``).
        value, output: ``True`` learns ``W_v`` / ``W_o`` as a :class:`ChannelLinear`;
            ``False`` is the identity (then the channel counts must agree); a module is used
            as given (channels-first in and out, e.g. the non-local block's ``g`` with
            pooling, or its ``W`` = 1x1 conv + BatchNorm).
        bias: whether the learned projections carry a bias.

    Shape:
        x: ``(B, C, *spatial)`` -> ``(B, out_channels, *nbhd.query_shape)``.
    """

    def __init__(self, in_channels: int, value_channels: int | None = None, out_channels: int | None = None,
                 value: bool | nn.Module = True, output: bool | nn.Module = True, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.value_channels = check_int("value_channels", in_channels if value_channels is None else value_channels,
                                        minimum=1)
        self.out_channels = check_int("out_channels", self.value_channels if out_channels is None else out_channels,
                                      minimum=1)
        if value is False and self.value_channels != self.in_channels:
            raise ValueError(f"without a value projection value_channels must equal in_channels, "
                             f"got value_channels={self.value_channels}, in_channels={self.in_channels}")
        if output is False and self.out_channels != self.value_channels:
            raise ValueError(f"without an output projection out_channels must equal value_channels, "
                             f"got out_channels={self.out_channels}, value_channels={self.value_channels}")
        factory = {"device": device, "dtype": dtype}
        self.value = _projection(value, in_channels, self.value_channels, bias, factory)
        self.output = _projection(output, self.value_channels, self.out_channels, bias, factory)

    def reset_parameters(self) -> None:
        reset_submodules(self)

    def values(self, x: Tensor, num_heads: int | None) -> Tensor:
        """``W_v x`` as ``(B, H, Nk, d)`` per head, or ``(B, Nk, C_v)`` when ``num_heads`` is None."""
        check_tensor("x", x, ndim=(3, 4, 5))
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels in dim 1, got shape {tuple(x.shape)}")
        v = to_tokens(self.value(x) if self.value is not None else x)
        if num_heads is None:
            return v
        check_divisible("value_channels", v.shape[-1], "num_heads", num_heads)
        return rearrange(v, "b n (h d) -> b h n d", h=num_heads)

    def finish(self, y: Tensor, query_shape: tuple[int, ...]) -> Tensor:
        """Merge heads ``(B, H, Nq, d)`` (or take ``(B, Nq, C_v)``), go channels-first, apply ``W_o``."""
        if y.ndim == 4:
            y = rearrange(y, "b h q d -> b q (h d)")
        y = from_tokens(y, query_shape)
        return self.output(y) if self.output is not None else y

    def forward(self, x: Tensor, nbhd: Neighborhood) -> Tensor:
        v = self.values(x, nbhd.num_heads)
        return self.finish(nbhd.aggregate(v).mean(-2), nbhd.query_shape)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, value_channels={self.value_channels}, out_channels={self.out_channels}"


def _projection(spec: bool | nn.Module, c_in: int, c_out: int, bias: bool, factory: dict) -> nn.Module | None:
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, bool):
        raise TypeError(f"a projection must be True, False or an nn.Module, got {type(spec).__name__}")
    return ChannelLinear(c_in, c_out, bias=bias, **factory) if spec else None
