"""Pairwise similarity and distance between token sets.

Axis legend: ``b`` batch, ``q`` queries, ``n`` keys, ``d`` feature dimension.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_tensor

#: Metrics where a larger value means nearer.
SIMILARITIES = ("cosine", "dot")
#: Metrics where a smaller value means nearer.
DISTANCES = ("euclidean", "chebyshev")
METRICS = SIMILARITIES + DISTANCES
#: every metric, as a type
Metric = Literal["cosine", "dot", "euclidean", "chebyshev"]


def similarity(queries: Tensor, keys: Tensor, metric: str = "cosine", eps: float = 1e-12) -> Tensor:
    """Pairwise scores between every query and every key.

    ``cosine``: ``<q, k> / (|q| |k|)`` (a zero vector has similarity 0 to everything);
    ``dot``: ``<q, k>``; ``euclidean``: squared distance ``|q - k|^2`` (the ranking of the
    ConvNN code, cheaper than its square root and with the same order); ``chebyshev``:
    ``max_d |q_d - k_d|`` (its balls are square windows, which makes spatial k-NN a conv).

    Shape:
        queries: ``(B, Nq, D)``, keys: ``(B, Nk, D)``  ->  ``(B, Nq, Nk)``.
    """
    check_tensor("queries", queries, ndim=3)
    check_tensor("keys", keys, ndim=3)
    check_choice("metric", metric, METRICS)
    if queries.shape[0] != keys.shape[0] or queries.shape[-1] != keys.shape[-1]:
        raise ValueError(f"queries (B, Nq, D) and keys (B, Nk, D) must agree in B and D, "
                         f"got queries {tuple(queries.shape)}, keys {tuple(keys.shape)}")
    return PairScorer(queries, keys, metric, eps).block(0, queries.shape[1])


class PairScorer:
    """Scores of query blocks against all keys, with every per-token step done once.

    ``PairScorer(q, k, metric).block(i, j) == similarity(q[:, i:j], k, metric)`` bit for bit:
    the normalisation (``cosine``) or squared norms (``euclidean``) of queries and keys are
    row-wise, so computing them once for all tokens instead of once per block changes no bit;
    only the pairwise part (a matmul, or the max over D) is done per block.

    Shape:
        queries: ``(B, Nq, D)``, keys: ``(B, Nk, D)``; ``block(i, j) -> (B, j - i, Nk)``.
    """

    def __init__(self, queries: Tensor, keys: Tensor, metric: str = "cosine", eps: float = 1e-12) -> None:
        self.metric = check_choice("metric", metric, METRICS)
        self.queries, self.keys = queries, keys
        if metric == "cosine":
            self.queries = F.normalize(queries, dim=-1, eps=eps)
            # the same tensor as queries and keys (self-similarity): normalise it once
            self.keys = self.queries if keys is queries else F.normalize(keys, dim=-1, eps=eps)
        if metric == "euclidean":
            self.query_sq = (queries * queries).sum(-1, keepdim=True)
            self.key_sq = (keys * keys).sum(-1).unsqueeze(-2)
        self.keys_t = self.keys.transpose(-1, -2)

    def block(self, start: int, stop: int, out: Tensor | None = None) -> Tensor:
        """Scores of queries ``start:stop`` against every key, ``(B, stop - start, Nk)``.

        A fresh tensor, or ``out`` (contiguous, that shape, no autograd) overwritten: a caller
        scoring many blocks reuses one buffer, because a fresh multi-MiB tensor per block is
        new memory from the OS each time (a page fault per 4 KiB: on a 2-core AMD EPYC, 64
        blocks of 8 MiB took 283 ms freshly allocated and 142 ms in one reused buffer). The
        values are the same bits either way; ``chebyshev`` always allocates.
        """
        q = self.queries[:, start:stop]
        if self.metric in ("cosine", "dot"):
            return q @ self.keys_t if out is None else torch.matmul(q, self.keys_t, out=out)
        if self.metric == "euclidean":
            # |q|^2 + |k|^2 - 2<q, k>, clamped at 0 only against round-off below zero.
            sq = self.query_sq[:, start:stop] + self.key_sq
            if out is None:
                return (sq - 2 * q @ self.keys_t).clamp_min_(0)
            # (-2 m) + sq: the same bits as sq - 2 m (scaling by -2 is exact, and a + b == b + a)
            return torch.matmul(q, self.keys_t, out=out).mul_(-2).add_(sq).clamp_min_(0)
        return (q.unsqueeze(-2) - self.keys.unsqueeze(-3)).abs().amax(-1)


def larger_is_nearer(metric: str) -> bool:
    """Whether ``metric`` ranks larger values first (similarities) or smaller (distances)."""
    return check_choice("metric", metric, METRICS) in SIMILARITIES
