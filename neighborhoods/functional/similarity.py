"""Pairwise similarity and distance between token sets.

Axis legend: ``b`` batch, ``q`` queries, ``n`` keys, ``d`` feature dimension.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_tensor

#: Metrics where a larger value means nearer.
SIMILARITIES = ("cosine", "dot")
#: Metrics where a smaller value means nearer.
DISTANCES = ("euclidean", "chebyshev")
METRICS = SIMILARITIES + DISTANCES


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
    return KeyScorer(keys, metric, eps)(queries)


class KeyScorer:
    """Scores of any number of query blocks against one key set, the key-side work done once.

    ``KeyScorer(keys, metric)(queries) == similarity(queries, keys, metric)`` bit for bit: the
    keys' normalisation (``cosine``) or squared norms (``euclidean``) are computed here once
    instead of once per block, and every query row is scored by the same operations.

    Shape:
        keys: ``(B, Nk, D)``; ``__call__(queries: (B, Nq, D)) -> (B, Nq, Nk)``.
    """

    def __init__(self, keys: Tensor, metric: str = "cosine", eps: float = 1e-12) -> None:
        self.metric = check_choice("metric", metric, METRICS)
        self.eps = eps
        self.keys = keys
        if metric == "cosine":
            self.keys_t = F.normalize(keys, dim=-1, eps=eps).transpose(-1, -2)
        elif metric in ("dot", "euclidean"):
            self.keys_t = keys.transpose(-1, -2)
        if metric == "euclidean":
            self.key_sq = (keys * keys).sum(-1).unsqueeze(-2)

    def __call__(self, queries: Tensor) -> Tensor:
        if self.metric == "cosine":
            return F.normalize(queries, dim=-1, eps=self.eps) @ self.keys_t
        if self.metric == "dot":
            return queries @ self.keys_t
        if self.metric == "euclidean":
            # |q|^2 + |k|^2 - 2<q, k>, clamped at 0 only against round-off below zero.
            sq = (queries * queries).sum(-1, keepdim=True) + self.key_sq
            return (sq - 2 * queries @ self.keys_t).clamp_min_(0)
        return (queries.unsqueeze(-2) - self.keys.unsqueeze(-3)).abs().amax(-1)


def larger_is_nearer(metric: str) -> bool:
    """Whether ``metric`` ranks larger values first (similarities) or smaller (distances)."""
    return check_choice("metric", metric, METRICS) in SIMILARITIES
