"""Fused similarity + running top-k in Triton: exact k-NN without any score matrix in memory.

One program takes a tile of ``BLOCK_Q`` queries of one sample and sweeps the keys in tiles of
``BLOCK_N``: it scores the tile (one ``tl.dot``, IEEE float32, no TF32) and merges it into a
per-query top-k held in registers. Nothing of size ``Nq x Nk`` is ever written, so memory is
``O(B * Nq * k)`` beyond the inputs, the design of the fused prototype in issue 10.

Ranking is :func:`~neighborhoods.functional.topk.top_k_stable`'s: scores become integer keys
whose order is the documented one (``-0.0 == 0.0``, NaN after ``-inf``, forbidden keys after
NaN) and ties go to the lower key index, so the kernel selects exactly what the torch path
selects from the same scores. The merge keeps the k best unsorted; each round moves the tile's
best (largest key, then lowest index) into the slot of the current worst if it ranks higher.

Imported lazily by :func:`~neighborhoods.functional.knn.knn` (only where Triton is installed).
It runs on CUDA, and on CPU under Triton's interpreter (``TRITON_INTERPRET=1`` set before
this module is imported), which is how the test suite checks it.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

#: Metrics the kernel scores (chebyshev, a max over D, stays on the torch path).
FUSED_METRICS = ("cosine", "dot", "euclidean")
#: Largest k the register top-k holds.
MAX_K = 64

# Integer keys below every float32's key (-inf's is int32 min + 2**23 - 1): taken tile entries,
# then forbidden keys (padding, masked, excluded), then NaN.
_TAKEN = -(2 ** 31)
_FORBIDDEN = _TAKEN + 1
_NAN = _TAKEN + 2
_EMPTY_INDEX = 2 ** 30  # indices of the not-yet-filled slots: after every real key


def interpreted() -> bool:
    """Whether kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@triton.jit
def _knn_kernel(q_ptr, k_ptr, q_sq_ptr, k_sq_ptr, exclude_ptr, allowed_ptr, out_key_ptr, out_index_ptr,
                num_queries, num_keys, dim,
                stride_qb, stride_qn, stride_kb, stride_kn, stride_sq_qb, stride_sq_kb, stride_eb, stride_ab,
                EUCLIDEAN: tl.constexpr, HAS_EXCLUDE: tl.constexpr, HAS_ALLOWED: tl.constexpr,
                K: tl.constexpr, K_PAD: tl.constexpr,
                BLOCK_Q: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_q = tl.program_id(0)
    b = tl.program_id(1)
    rq = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
    rd = tl.arange(0, BLOCK_D)
    slot = tl.arange(0, K_PAD)
    q_valid = rq < num_queries
    if EUCLIDEAN:
        q_sq = tl.load(q_sq_ptr + b * stride_sq_qb + rq, mask=q_valid, other=0.0)
    if HAS_EXCLUDE:
        excluded = tl.load(exclude_ptr + b * stride_eb + rq, mask=q_valid, other=-1)
    # the running top-k: slots beyond K hold the best possible entry, so they are never the worst
    pad = slot[None, :] >= K
    best_key = tl.where(pad, 0x7FFFFFFF, _TAKEN) + tl.zeros((BLOCK_Q, K_PAD), tl.int32)
    best_index = tl.where(pad, -1, _EMPTY_INDEX + slot[None, :]) + tl.zeros((BLOCK_Q, K_PAD), tl.int32)
    for start in range(0, num_keys, BLOCK_N):
        rn = start + tl.arange(0, BLOCK_N)
        k_valid = rn < num_keys
        s = tl.zeros((BLOCK_Q, BLOCK_N), tl.float32)
        for d0 in range(0, dim, BLOCK_D):
            d = d0 + rd
            q = tl.load(q_ptr + b * stride_qb + rq[:, None] * stride_qn + d[None, :],
                        mask=q_valid[:, None] & (d[None, :] < dim), other=0.0)
            kt = tl.load(k_ptr + b * stride_kb + rn[None, :] * stride_kn + d[:, None],
                         mask=k_valid[None, :] & (d[:, None] < dim), other=0.0)
            s += tl.dot(q, kt, input_precision="ieee")
        if EUCLIDEAN:
            k_sq = tl.load(k_sq_ptr + b * stride_sq_kb + rn, mask=k_valid, other=0.0)
            # larger is nearer; NaN stays NaN, as in torch's clamp_min
            s = -tl.maximum(q_sq[:, None] + k_sq[None, :] - 2 * s, 0.0, propagate_nan=tl.PropagateNan.ALL)
        s = s + 0.0  # -0.0 -> +0.0: they compare equal, so they must tie
        bits = s.to(tl.int32, bitcast=True)
        key = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
        key = tl.where(s != s, _NAN, key)
        forbidden = ~k_valid[None, :] | (rq[:, None] < 0)
        if HAS_EXCLUDE:
            forbidden = forbidden | (rn[None, :] == excluded[:, None])
        if HAS_ALLOWED:
            allowed = tl.load(allowed_ptr + b * stride_ab + rn, mask=k_valid, other=0)
            forbidden = forbidden | (allowed == 0)[None, :]
        key = tl.where(forbidden, _FORBIDDEN, key)
        index = rn[None, :] + tl.zeros((BLOCK_Q, BLOCK_N), tl.int32)
        for _ in tl.static_range(K):
            # the tile's best: largest key, lowest index among equals
            top = tl.max(key, 1)
            top_index = tl.min(tl.where(key == top[:, None], index, 0x7FFFFFFF), 1)
            # the running worst: smallest key, highest index among equals
            worst = tl.min(best_key, 1)
            worst_index = tl.max(tl.where(best_key == worst[:, None], best_index, -1), 1)
            better = (top > worst) | ((top == worst) & (top_index < worst_index))
            replace = (best_key == worst[:, None]) & (best_index == worst_index[:, None]) & better[:, None]
            best_key = tl.where(replace, top[:, None], best_key)
            best_index = tl.where(replace, top_index[:, None], best_index)
            key = tl.where(index == top_index[:, None], _TAKEN, key)
    out = (b * num_queries + rq[:, None]) * K + slot[None, :]
    store = q_valid[:, None] & (slot[None, :] < K)
    tl.store(out_key_ptr + out, best_key, mask=store)
    tl.store(out_index_ptr + out, best_index, mask=store)


def _block(n: int, low: int, high: int) -> int:
    return max(low, min(high, triton.next_power_of_2(max(n, 1))))


def fused_knn(queries: Tensor, keys: Tensor, k: int, metric: str, key_mask: Tensor | None = None,
              exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`~neighborhoods.functional.knn.knn` in one kernel, float32, for checked arguments.

    Args:
        queries: ``(B, Nq, D)`` float32; keys: ``(B, Nk, D)`` float32.
        k: ``1 <= k <= MAX_K``, at most the keys a query may choose.
        metric: one of :data:`FUSED_METRICS`.
        key_mask: ``(B or 1, Nk)`` bool; exclude: ``(B or 1, Nq)`` long.

    Returns:
        ``(scores, indices)`` ``(B, Nq, k)`` in the order of ``knn``: scores are the metric's
        values as the kernel computed them (similarities descending, distances ascending).
    """
    b, nq, dim = queries.shape
    nk = keys.shape[1]
    if metric == "cosine":
        queries = torch.nn.functional.normalize(queries, dim=-1, eps=1e-12)
        keys = torch.nn.functional.normalize(keys, dim=-1, eps=1e-12)
    queries, keys = queries.contiguous(), keys.contiguous()
    euclidean = metric == "euclidean"
    q_sq = (queries * queries).sum(-1).contiguous() if euclidean else queries
    k_sq = (keys * keys).sum(-1).contiguous() if euclidean else keys
    ex = exclude.contiguous() if exclude is not None else queries
    allowed = key_mask.to(torch.int8).contiguous() if key_mask is not None else queries
    out_key = torch.empty(b, nq, k, dtype=torch.int32, device=queries.device)
    out_index = torch.empty(b, nq, k, dtype=torch.int32, device=queries.device)
    block_q = _block(nq, 16, 32 if interpreted() else 64)
    block_n = _block(nk, 16, 32 if interpreted() else 64)
    block_d = _block(dim, 16, 64)
    grid = (triton.cdiv(nq, block_q), b)
    _knn_kernel[grid](
        queries, keys, q_sq, k_sq, ex, allowed, out_key, out_index, nq, nk, dim,
        queries.stride(0) if queries.shape[0] > 1 else 0, queries.stride(1),
        keys.stride(0) if keys.shape[0] > 1 else 0, keys.stride(1),
        q_sq.stride(0) if euclidean and b > 1 else 0, k_sq.stride(0) if euclidean and b > 1 else 0,
        ex.stride(0) if exclude is not None and ex.shape[0] > 1 else 0,
        allowed.stride(0) if key_mask is not None and allowed.shape[0] > 1 else 0,
        EUCLIDEAN=euclidean, HAS_EXCLUDE=exclude is not None, HAS_ALLOWED=key_mask is not None,
        K=k, K_PAD=triton.next_power_of_2(k), BLOCK_Q=block_q, BLOCK_N=block_n, BLOCK_D=block_d,
    )
    # the k winners come unsorted: order them by (key desc, index asc) with two stable sorts
    out_key, out_index = out_key.long(), out_index.long()
    by_index = out_index.sort(dim=-1)
    out_key = out_key.gather(-1, by_index.indices)
    order = out_key.sort(dim=-1, descending=True, stable=True).indices
    out_key, out_index = out_key.gather(-1, order), by_index.values.gather(-1, order)
    # back from integer keys to the float32 scores the kernel compared
    bits = torch.where(out_key < 0, out_key ^ 0x7FFFFFFF, out_key).to(torch.int32)
    scores = bits.view(torch.float32).masked_fill(out_key == _NAN, float("nan"))
    return (scores if metric != "euclidean" else -scores), out_index
