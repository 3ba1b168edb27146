"""Blocked hard k-nearest-neighbour search.

Axis legend: ``b`` batch, ``q`` queries, ``n`` keys, ``k`` neighbours.

The full score matrix is never held: queries are processed ``block_size`` at a time, so
peak memory is ``B * block_size * Nk`` scores, not ``B * Nq * Nk``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_int, check_tensor
from .similarity import larger_is_nearer, similarity


def top_k_stable(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k of ``scores`` (larger first) along the last axis, ties to the lower index.

    ``torch.topk`` makes no promise about which of several equal scores it returns, so the
    threshold value is found with topk and the tied entries at the threshold are then taken
    in index order; the k winners are finally sorted by (score desc, index asc).
    """
    n = scores.shape[-1]
    kth = scores.topk(k, dim=-1).values[..., -1:]
    above = scores > kth
    at = scores == kth
    need = k - above.sum(-1, keepdim=True)
    chosen = above | (at & (at.cumsum(-1) <= need))
    # distinct keys (n - position) among the chosen: topk returns them in ascending index
    rank = torch.arange(n, 0, -1, device=scores.device)
    idx = torch.where(chosen, rank, torch.zeros_like(rank)).topk(k, dim=-1).values
    idx = n - idx
    picked = scores.gather(-1, idx)
    order = torch.sort(picked, dim=-1, descending=True, stable=True).indices
    return picked.gather(-1, order), idx.gather(-1, order)


def knn(queries: Tensor, keys: Tensor, k: int, metric: str = "cosine", *, block_size: int = 1024,
        key_mask: Tensor | None = None, exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest keys of every query, best first, ties broken by lower key index.

    Args:
        queries: ``(B, Nq, D)``.
        keys: ``(B, Nk, D)``.
        k: neighbours per query, ``1 <= k <=`` the number of keys a query may choose.
        metric: ``cosine`` | ``dot`` (larger is nearer) or ``euclidean`` (squared) |
            ``chebyshev`` (smaller is nearer); see :func:`similarity`.
        block_size: queries scored at a time; the result does not depend on it.
        key_mask: ``(Nk,)`` or ``(B, Nk)`` bool, keys that may be chosen.
        exclude: ``(Nq,)`` or ``(B, Nq)`` long, one key per query that may not be chosen
            (the query itself, when slot 0 is reserved for it).

    Returns:
        ``(scores, indices)``, both ``(B, Nq, k)``: the metric's values (similarities
        descending, distances ascending) and the key indices.
    """
    check_tensor("queries", queries, ndim=3)
    check_tensor("keys", keys, ndim=3)
    k = check_int("k", k, minimum=1)
    block_size = check_int("block_size", block_size, minimum=1)
    b, nq, _ = queries.shape
    nk = keys.shape[1]
    allowed = nk
    if key_mask is not None:
        if key_mask.dtype != torch.bool or key_mask.shape not in ((nk,), (b, nk)):
            raise ValueError(f"key_mask must be a bool tensor of shape ({nk},) or ({b}, {nk}), "
                             f"got dtype {key_mask.dtype}, shape {tuple(key_mask.shape)}")
        allowed = int(key_mask.sum(-1).min())
    if exclude is not None:
        if exclude.dtype != torch.long or exclude.shape not in ((nq,), (b, nq)):
            raise ValueError(f"exclude must be a long tensor of shape ({nq},) or ({b}, {nq}), "
                             f"got dtype {exclude.dtype}, shape {tuple(exclude.shape)}")
        allowed -= 1
    if k > allowed:
        raise ValueError(f"k must be <= the number of candidate keys, got k={k}, candidates={allowed}")

    sign = 1.0 if larger_is_nearer(metric) else -1.0
    if nq == 0:  # no queries: nothing to score, but the result keeps its (B, 0, k) shape
        return queries.new_empty(b, 0, k), torch.empty(b, 0, k, dtype=torch.long, device=queries.device)
    all_scores, all_indices = [], []
    for start in range(0, nq, block_size):
        stop = min(start + block_size, nq)
        s = sign * similarity(queries[:, start:stop], keys, metric)  # (b, q, n), larger is nearer
        if key_mask is not None:
            s = s.masked_fill(~key_mask.view(-1, 1, nk), float("-inf"))
        if exclude is not None:
            ex = exclude.view(-1, nq)[:, start:stop].expand(b, -1)
            s = s.scatter(-1, ex.unsqueeze(-1), float("-inf"))
        scores, indices = top_k_stable(s, k)
        all_scores.append(sign * scores)
        all_indices.append(indices)
    return torch.cat(all_scores, 1), torch.cat(all_indices, 1)
