"""Neighbourhood attention's selector: a softmax over a fixed window that shifts at the borders."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor

from ..checks import check_divisible, check_float, check_int, check_int_tuple
from ..footprint import PixelFootprint
from ..functional.gather import gather
from ..functional.neighborhood_window import check_window_fits, neighborhood_window_index
from ..functional.softmax import softmax_last
from ..neighborhood import Neighborhood
from ..pointwise import ChannelLinear
from ..tokens import to_tokens
from .base import Selector


class NeighborhoodWindow(Selector):
    """Every query's ``prod(kernel_size)`` window keys, weighted by ``softmax_j(q_i . k_j * scale)``.

    Hassani et al. 2023 (NAT), Eq. 2 / Hassani & Shi 2022 (DiNAT), Eq. 1: attention restricted
    to the window :func:`~neighborhoods.functional.neighborhood_window.neighborhood_window_index`
    gives, which is shifted inward at the borders so that every query sees exactly
    ``kernel_size`` keys per axis (NATTEN's definition; no zero padding). Between convolution
    (:class:`FixedSpatial`: the same window, a learned weight per slot) and attention
    (:class:`SoftmaxAll`: a softmax over every key); a window covering the whole input is
    :class:`SoftmaxAll` exactly.

    ``q = W_q x``, ``k = W_k x`` as in :class:`SoftmaxAll` (same arguments and parameter
    names, so one's weights load into the other), split into ``num_heads`` heads.

    Args:
        in_channels: C of the input.
        kernel_size: window size per axis (an int or one per axis).
        dilation: gap between window taps per axis (DiNAT's dilated window).
        qk_channels: channels of q and k (default ``in_channels``).
        num_heads: heads; ``qk_channels`` must be divisible by it.
        bias: whether the projections carry a bias.
        scale: score multiplier; default ``1 / sqrt(qk_channels / num_heads)``.
        project: learn ``W_q``, ``W_k`` (else q = k = x).
        ndim: number of spatial axes (1, 2 or 3).

    Shape:
        x: ``(B, C, *spatial)`` with ``kernel_size * dilation <= size`` per axis -> Neighborhood
        with static ``index`` ``(N, K)`` and ``weight`` ``(B, H, N, K, 1)``, K = ``prod(kernel_size)``.
    """

    selection = "soft content"
    locality = "local"

    def __init__(self, in_channels: int, kernel_size: int | tuple[int, ...], dilation: int | tuple[int, ...] = 1,
                 qk_channels: int | None = None, num_heads: int = 1, bias: bool = True, scale: float | None = None,
                 project: bool = True, ndim: int = 2, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got ndim={ndim!r}")
        self.ndim = ndim
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.kernel_size = check_int_tuple("kernel_size", kernel_size, ndim, minimum=1)
        self.dilation = check_int_tuple("dilation", dilation, ndim, minimum=1)
        self.qk_channels = check_int("qk_channels", in_channels if qk_channels is None else qk_channels, minimum=1)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        check_divisible("qk_channels", self.qk_channels, "num_heads", self.num_heads)
        if not project and self.qk_channels != self.in_channels:
            raise ValueError(f"without projections qk_channels must equal in_channels, "
                             f"got qk_channels={self.qk_channels}, in_channels={self.in_channels}")
        self.scale = (check_float("scale", scale) if scale is not None
                      else 1.0 / math.sqrt(self.qk_channels // self.num_heads))
        factory = {"device": device, "dtype": dtype}
        self.query = ChannelLinear(in_channels, self.qk_channels, bias=bias, **factory) if project else None
        self.key = ChannelLinear(in_channels, self.qk_channels, bias=bias, **factory) if project else None

    @property
    def num_taps(self) -> int:
        return math.prod(self.kernel_size)

    def check_fits(self, x: Tensor) -> None:
        """``x`` has the selector's rank and a grid the window fits in (``kernel_size * dilation <= size``)."""
        self.check_input(x, self.ndim)
        check_window_fits(tuple(x.shape[2:]), self.kernel_size, self.dilation)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Queries and keys per head, ``(B, H, N, d)`` each."""
        q = to_tokens(self.query(x) if self.query is not None else x)
        k = to_tokens(self.key(x) if self.key is not None else x)
        split = "b n (h d) -> b h n d"
        return rearrange(q, split, h=self.num_heads), rearrange(k, split, h=self.num_heads)

    def window(self, x: Tensor) -> Tensor:
        """The static window index ``(N, K)`` of ``x``'s grid."""
        return neighborhood_window_index(tuple(x.shape[2:]), self.kernel_size, self.dilation, device=x.device)

    def forward(self, x: Tensor) -> Neighborhood:
        self.check_fits(x)
        q, k = self.project(x)
        index = self.window(x)
        scores = torch.einsum("bhqd,bhqmd->bhqm", q, gather(k, index)) * self.scale
        spatial = tuple(x.shape[2:])
        return Neighborhood(num_keys=math.prod(spatial), query_shape=spatial, index=index,
                            weight=softmax_last(scores).unsqueeze(-1), num_heads=self.num_heads,
                            footprint=PixelFootprint.pixels(spatial))

    def cost(self, fast: bool) -> str:
        # the fast path masks a dense score matrix; the reference scores K keys per query
        return "O(N^2)" if fast else "O(N k)"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, kernel_size={self.kernel_size}"
        if self.dilation != (1,) * self.ndim:
            s += f", dilation={self.dilation}"
        return s + f", qk_channels={self.qk_channels}, num_heads={self.num_heads}, scale={self.scale:.4g}"
