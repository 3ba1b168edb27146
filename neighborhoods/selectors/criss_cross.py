"""CCNet's selector: every pixel attends to its own row and column."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import check_float
from ..footprint import PixelFootprint
from ..functional.criss_cross import criss_cross_index
from ..functional.gather import gather
from ..neighborhood import Neighborhood
from ..tokens import to_tokens
from .base import Selector


class CrissCross(Selector):
    """The criss-cross neighbourhood with softmax weights (Huang et al. 2019, Eqs. 1-2).

    Candidates of pixel ``u`` are the ``H + W - 1`` pixels of its column and row
    (:func:`~neighborhoods.functional.criss_cross.criss_cross_index`); their weights are
    ``A_u = softmax_j(scale * <q_u, k_j>)`` over those candidates only. As a dense matrix
    this is ``D^-1 (C . exp(Q K^T))`` with ``C`` the criss-cross mask (Zhu et al. 2021,
    appendix Sec. 1.5). Two applications reach every pixel from every pixel.

    Args:
        query, key: channels-first modules ``(B, C, H, W) -> (B, D, H, W)`` (CCNet's 1x1
            convolutions to ``C / 8`` channels); ``None`` uses the input itself.
        scale: multiplier of the dot product (CCNet: 1).

    Shape:
        x: ``(B, C, H, W)`` -> Neighborhood with static ``index`` ``(HW, H + W - 1)`` and
        ``weight`` ``(B, HW, H + W - 1, 1)``.
    """

    def __init__(self, query: nn.Module | None = None, key: nn.Module | None = None, scale: float = 1.0) -> None:
        super().__init__()
        self.query = query
        self.key = key
        self.scale = check_float("scale", scale)

    def forward(self, x: Tensor) -> Neighborhood:
        self.check_input(x, 2)
        q = self.query(x) if self.query is not None else x
        k = self.key(x) if self.key is not None else x
        if q.shape[2:] != x.shape[2:] or k.shape != q.shape:
            raise ValueError(f"criss-cross queries and keys must keep x's grid {tuple(x.shape[2:])} and agree, "
                             f"got queries {tuple(q.shape)}, keys {tuple(k.shape)}")
        index = criss_cross_index(*x.shape[2:], device=x.device)
        keys = gather(to_tokens(k), index)  # (b, q, m, d)
        queries = to_tokens(q)  # (b, q, d)
        # not einsum: under dynamic shapes Inductor could not order the strides its permutes gave
        # RCCA's one-key-channel scores ("1 < s0*s53"). With one channel the dot product is a
        # product; else one row vector times the candidates per query, the product einsum runs
        # (eager forward + backward: 1.00x einsum's time at 8 and 64 channels, 0.86x at one)
        if queries.shape[-1] == 1:
            scores = keys.squeeze(-1) * queries
        else:
            scores = (queries.unsqueeze(2) @ keys.transpose(-1, -2)).squeeze(2)
        scores = scores * self.scale
        return Neighborhood(num_keys=index.shape[0], query_shape=tuple(x.shape[2:]), index=index,
                            weight=scores.softmax(-1).unsqueeze(-1),
                            footprint=PixelFootprint.pixels(tuple(x.shape[2:])))

    selection = "soft content"

    def cost(self, fast: bool) -> str:
        return "O(N (H+W))"  # a row and a column per query

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"
