"""Attention's selector: every key, weighted by a softmax over scaled dot products."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from .._checks import check_divisible, check_float, check_int
from ..neighborhood import Neighborhood
from ..tokens import to_tokens
from .base import Selector


def check_mask(mask: Tensor | None, batch: int, heads: int, nq: int, nk: int) -> Tensor | None:
    """An attention mask of one of the documented shapes, as a 4-D tensor.

    ``mask`` is bool (``True`` = may attend, the convention of
    ``F.scaled_dot_product_attention``) or floating (added to the scores), of shape
    ``(Nq, Nk)``, ``(B, Nq, Nk)`` or ``(B, H, Nq, Nk)``.
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    shapes = {2: (nq, nk), 3: (batch, nq, nk), 4: (batch, heads, nq, nk)}
    if mask.ndim not in shapes or tuple(mask.shape) != shapes[mask.ndim]:
        raise ValueError(f"mask must have shape (Nq, Nk)={shapes[2]}, (B, Nq, Nk)={shapes[3]} or "
                         f"(B, H, Nq, Nk)={shapes[4]}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be bool or floating point, got dtype {mask.dtype}")
    if mask.ndim == 2:
        return mask[None, None]
    return mask[:, None] if mask.ndim == 3 else mask


class SoftmaxAll(Selector):
    """Every key, weighted by ``softmax(q_i . k_j * scale)`` over j (Vaswani et al. 2017, Eq. 1).

    ``q = W_q x`` and ``k = W_k x`` are learned linear maps of the tokens (pass
    ``project=False`` to score the raw features, as the Gaussian non-local block does),
    split into ``num_heads`` heads of ``qk_channels / num_heads`` channels.

    Args:
        in_channels: C of the input.
        qk_channels: channels of q and k (default ``in_channels``).
        num_heads: heads; ``qk_channels`` must be divisible by it.
        bias: whether the projections carry a bias.
        scale: score multiplier; default ``1 / sqrt(qk_channels / num_heads)``.
        project: learn ``W_q``, ``W_k`` (else q = k = x).

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with ``weight`` ``(B, H, N, N, 1)``.
        ``mask`` (forward keyword): see :func:`check_mask`.
    """

    def __init__(self, in_channels: int, qk_channels: int | None = None, num_heads: int = 1, bias: bool = True,
                 scale: float | None = None, project: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.qk_channels = check_int("qk_channels", qk_channels if qk_channels is not None else in_channels,
                                     minimum=1)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        check_divisible("qk_channels", self.qk_channels, "num_heads", self.num_heads)
        if not project and self.qk_channels != self.in_channels:
            raise ValueError(f"without projections qk_channels must equal in_channels, "
                             f"got qk_channels={self.qk_channels}, in_channels={self.in_channels}")
        self.scale = None if scale is None else check_float("scale", scale)
        factory = {"device": device, "dtype": dtype}
        self.query = nn.Linear(in_channels, self.qk_channels, bias=bias, **factory) if project else None
        self.key = nn.Linear(in_channels, self.qk_channels, bias=bias, **factory) if project else None

    @property
    def head_scale(self) -> float:
        return self.scale if self.scale is not None else 1.0 / math.sqrt(self.qk_channels // self.num_heads)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Queries and keys per head, ``(B, H, N, d)`` each."""
        self.check_input(x, (1, 2, 3))
        t = to_tokens(x)
        if t.shape[-1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels in dim 1, got shape {tuple(x.shape)}")
        q = self.query(t) if self.query is not None else t
        k = self.key(t) if self.key is not None else t
        split = "b n (h d) -> b h n d"
        return rearrange(q, split, h=self.num_heads), rearrange(k, split, h=self.num_heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Neighborhood:
        q, k = self.project(x)
        scores = q @ k.transpose(-1, -2) * self.head_scale
        mask = check_mask(mask, x.shape[0], self.num_heads, q.shape[-2], k.shape[-2])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        weight = scores.softmax(-1).unsqueeze(-1)
        return Neighborhood(num_keys=k.shape[-2], query_shape=tuple(x.shape[2:]), weight=weight,
                            num_heads=self.num_heads)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, qk_channels={self.qk_channels}, num_heads={self.num_heads}"
        if self.scale is not None:
            s += f", scale={self.scale}"
        return s
