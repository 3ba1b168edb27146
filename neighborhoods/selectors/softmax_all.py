"""Attention's selector: every key, weighted by a softmax over scaled dot products."""

from __future__ import annotations

import math

import torch

from ..checks import check_divisible, check_float, check_int
from ..pointwise import ChannelLinear
from ..query_grid import QueryGrid
from .dense_affinity import DenseAffinity


class SoftmaxAll(DenseAffinity):
    """Every key, weighted by ``softmax_j(q_i . k_j * scale)`` (Vaswani et al. 2017, Eq. 1).

    ``q = W_q x`` and ``k = W_k x`` are learned linear maps of the tokens (``project=False``
    scores the raw features, as the Gaussian non-local block does), split into
    ``num_heads`` heads of ``qk_channels / num_heads`` channels.

    Args:
        in_channels: C of the input.
        qk_channels: channels of q and k (default ``in_channels``).
        num_heads: heads; ``qk_channels`` must be divisible by it.
        bias: whether the projections carry a bias.
        scale: score multiplier; default ``1 / sqrt(qk_channels / num_heads)``.
        project: learn ``W_q``, ``W_k`` (else q = k = x).

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with ``weight`` ``(B, H, N, N, 1)``.
    """

    def __init__(self, in_channels: int, qk_channels: int | None = None, num_heads: int = 1, bias: bool = True,
                 scale: float | None = None, project: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, queries: QueryGrid | None = None) -> None:
        in_channels = check_int("in_channels", in_channels, minimum=1)
        qk_channels = check_int("qk_channels", qk_channels if qk_channels is not None else in_channels, minimum=1)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        check_divisible("qk_channels", qk_channels, "num_heads", num_heads)
        if not project and qk_channels != in_channels:
            raise ValueError(f"without projections qk_channels must equal in_channels, "
                             f"got qk_channels={qk_channels}, in_channels={in_channels}")
        factory = {"device": device, "dtype": dtype}
        super().__init__(
            query=ChannelLinear(in_channels, qk_channels, bias=bias, **factory) if project else None,
            key=ChannelLinear(in_channels, qk_channels, bias=bias, **factory) if project else None,
            normalize="softmax", num_heads=num_heads,
            scale=check_float("scale", scale) if scale is not None else 1.0 / math.sqrt(qk_channels // num_heads),
            queries=queries,
        )
        self.in_channels = in_channels
        self.qk_channels = qk_channels

    def extra_repr(self) -> str:
        return f"{self.in_channels}, qk_channels={self.qk_channels}, num_heads={self.num_heads}, scale={self.scale:.4g}"
