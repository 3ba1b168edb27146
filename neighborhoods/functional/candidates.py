"""Sums and distances over a static candidate list, without gathering the candidates.

Axis legend: ``b`` batch, ``q`` queries (Nq), ``n`` keys (Nk), ``m`` candidates per query (M),
``s`` slots (S), ``d`` features per key (D).

The N3 block's neighbour volumes are ``out[b, q, s] = sum_m w[b, q, m, s] v[b, index[q, m]]``
(Ploetz & Roth 2018, Eq. 11) with a static ``index`` ``(Nq, M)``. Gathering ``v[index]`` holds
a ``(B, Nq, M, D)`` tensor, 16 GB for 128x128 images with 4x4 patches and every patch a
candidate; here a block of queries at a time scatters its weights into a dense ``(S, L)``
matrix over the *band* of keys ``[lo, hi)`` its candidates lie in (a search window of
row-major items covers a few rows of the grid; without a window the band is every key) and
multiplies it with ``v[lo:hi]``, so memory is one block's ``B x bq x S x L`` and the product
runs at matrix-multiply speed. The distances ``|e_q - e_m|^2`` at the candidates are
computed the same way. Both are autograd Functions whose backward recomputes each block
instead of saving it: under autograd only the inputs are kept, never ``Nq x Nk`` numbers.
A second derivative (``create_graph=True``) and the transforms of :mod:`.transforms`
(compile, export, jit.trace, vmap) use the direct forms below instead: exact, differentiable
to any order, at their memory cost.

``*_gathered`` are the direct forms (gather, then contract): the reference the tests compare
against.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..checks import check_int, check_tensor
from .gather import gather
from .stages import stage
from .transforms import under_transform

#: :func:`candidate_sq_distances` of one block (``block_size`` unset or >= N) computes all
#: ``(B, N, N)`` distances under plain autograd, which keeps them for the backward pass, when
#: ``B N^2`` is at most this (8 MiB in float32). The same formula as the blocked Function's
#: single band, so the same values, without its key bands read on the host. Forward + backward,
#: B = 32, 32 features, a 3x3-item window, one thread of a 2-core Xeon, blocked -> dense:
#: N = 9 (the digits ablation's 4x4 maps, 2x2 patches) 0.55 -> 0.30 ms, N = 49 1.06 -> 0.89 ms,
#: N = 225 14.8 -> 12.6 ms (a band of 1024 queries spans every key: the blocked form is dense too).
DENSE_ELEMENTS = 1 << 21
#: elements of one block's dense scratch matrix when the block size is chosen automatically
#: (2^24: 64 MiB in float32)
BLOCK_ELEMENTS = 1 << 24


def key_bands(index: Tensor, rows: int, num_keys: int) -> list[tuple[int, int, int, int]]:
    """``(q0, q1, lo, hi)`` per block of ``rows`` queries: the block's candidates lie in keys ``[lo, hi)``."""
    lo = index.amin(1).tolist()
    hi = index.amax(1).tolist()
    if lo and (min(lo) < 0 or max(hi) >= num_keys):
        raise ValueError(f"index entries must lie in [0, {num_keys}), got [{min(lo)}, {max(hi)}]")
    return [(q0, min(q0 + rows, len(lo)), min(lo[q0:q0 + rows]), max(hi[q0:q0 + rows]) + 1)
            for q0 in range(0, len(lo), rows)]


def _rows(block_size: int | None, per_query: int, num_queries: int) -> int:
    """Queries per block: ``block_size``, or as many as fit :data:`BLOCK_ELEMENTS` at ``per_query`` each."""
    if block_size is not None:
        return check_int("block_size", block_size, minimum=1)
    return max(1, min(num_queries, BLOCK_ELEMENTS // max(1, per_query)))


def _check_index(index: Tensor) -> None:
    check_tensor("index", index, ndim=2, floating=False)
    if index.dtype != torch.long:
        raise TypeError(f"index must be a torch.long tensor, got dtype {index.dtype}")


def negligible(dtype: torch.dtype) -> float:
    """``tiny / eps`` of ``dtype`` (~1e-31 in float32): weights below it are treated as 0 in the products.

    Softmax-style weights such as N3's underflow gradually: a few percent of them are
    subnormal, and so are their products with ordinary values. x86 CPUs compute with subnormal
    numbers one to two orders of magnitude slower, which made the scratch matrix products
    below 10x slower than with the same matrix holding zeros. A weight under ``tiny / eps``
    contributes less than ``tiny / eps * sum |v|`` to an output (1e-31 of the values' scale
    in float32, 1e-292 in float64), far under the output's own rounding, and its product with
    any value above ``eps`` would be subnormal.
    """
    info = torch.finfo(dtype)
    return info.tiny / info.eps


def _scatter_dense(weight: Tensor, index: Tensor, lo: int, width: int) -> Tensor:
    """``(b, bq, m, s)`` weights of candidates ``index`` ``(bq, m)`` as a dense ``(b, bq, s, width)`` over keys lo..

    Weights under :func:`negligible` enter as 0 (their gradient is still computed exactly).
    """
    b, bq, m, s = weight.shape
    weight = weight.masked_fill(weight.abs() < negligible(weight.dtype), 0.0)
    dense = weight.new_zeros(b, bq, s, width)
    return dense.scatter_add_(3, (index - lo)[None, :, None, :].expand(b, bq, s, m), weight.transpose(2, 3))


def _band_sum(values: Tensor, weight: Tensor, index: Tensor, q0: int, q1: int, lo: int, hi: int) -> Tensor:
    """Queries ``q0..q1`` of :func:`candidate_sum` from the keys ``lo..hi`` their candidates lie in: ``(b, bq, s, d)``."""
    b, _, d = values.shape
    dense = _scatter_dense(weight[:, q0:q1], index[q0:q1], lo, hi - lo)
    return (dense.flatten(1, 2) @ values[:, lo:hi]).view(b, q1 - q0, weight.shape[-1], d)


class _CandidateSum(torch.autograd.Function):
    """:func:`candidate_sum` with a blocked forward and a blocked, recomputing backward.

    The blocked backward is for one differentiation. Asked for a graph of the gradient
    (``create_graph=True``: a second derivative), it computes the gradient with the direct
    forms instead (a gather and a scatter of ``(B, Nq, M, D)``), so higher derivatives are
    exact at the direct forms' memory cost.
    """

    @staticmethod
    def forward(values: Tensor, weight: Tensor, index: Tensor, bands: list) -> Tensor:
        if len(bands) == 1:  # one block: its product is the output (no copy into a preallocated one)
            return _band_sum(values, weight, index, *bands[0])
        out = values.new_empty(values.shape[0], index.shape[0], weight.shape[-1], values.shape[-1])
        for band in bands:
            q0, q1 = band[:2]
            out[:, q0:q1] = _band_sum(values, weight, index, *band)
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        values, weight, index, bands = inputs
        ctx.save_for_backward(values, weight, index)
        ctx.bands = bands

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        values, weight, index = ctx.saved_tensors
        need_values, need_weight = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled():  # create_graph: differentiable direct forms
            grad_values = grad_weight = None
            if need_values:
                # d out[q, s] / d values[n] = sum over (q, m) with index[q, m] = n of weight[q, m, s]
                per_candidate = torch.einsum("bqms,bqsd->bqmd", weight, grad_out)
                grad_values = values.new_zeros(values.shape).index_add(1, index.flatten(),
                                                                       per_candidate.flatten(1, 2))
            if need_weight:
                grad_weight = torch.einsum("bqsd,bqmd->bqms", grad_out, gather(values, index))
            return grad_values, grad_weight, None, None
        # row-major, whatever the strides of values (often a transposed unfold): an in-place
        # baddbmm_ into a column-major slice takes a slow path, 30x slower on CPU
        grad_values = values.new_zeros(values.shape) if need_values else None
        grad_weight = torch.empty_like(weight) if need_weight else None
        b, _, d = values.shape
        s = grad_out.shape[2]
        for q0, q1, lo, hi in ctx.bands:
            g = grad_out[:, q0:q1].reshape(b, (q1 - q0) * s, d)  # (b, bq s, d)
            if need_values:
                dense = _scatter_dense(weight[:, q0:q1], index[q0:q1], lo, hi - lo).flatten(1, 2)
                grad_values[:, lo:hi].baddbmm_(dense.transpose(1, 2), g)
            if need_weight:
                full = (g @ values[:, lo:hi].transpose(1, 2)).view(b, q1 - q0, s, hi - lo)  # (b, bq, s, L)
                m = index.shape[1]
                picked = full.gather(3, (index[q0:q1] - lo)[None, :, None, :].expand(b, q1 - q0, s, m))
                grad_weight[:, q0:q1] = picked.transpose(2, 3)
        return grad_values, grad_weight, None, None


def candidate_sum(values: Tensor, index: Tensor, weight: Tensor, block_size: int | None = None) -> Tensor:
    """``out[b, q, s] = sum_m weight[b, q, m, s] * values[b, index[q, m]]`` without gathering ``values[index]``.

    Args:
        values: ``(B, Nk, D)``.
        index: ``(Nq, M)`` long, the static candidates of every query.
        weight: ``(B, Nq, M, S)``.
        block_size: queries per block; ``None`` chooses it so that a block's dense scratch
            matrix holds at most :data:`BLOCK_ELEMENTS` numbers. The result does not depend on it.

    Shape:
        ``-> (B, Nq, S, D)``; peak extra memory one block's ``B x bq x S x L`` (L: the
        block's key band), with or without autograd.
    """
    check_tensor("values", values, ndim=3)
    check_tensor("weight", weight, ndim=4)
    _check_index(index)
    b, nq, m, s = weight.shape
    if b != values.shape[0] or (nq, m) != tuple(index.shape):
        raise ValueError(f"weight (B, Nq, M, S) must match values' B={values.shape[0]} and index (Nq, M)="
                         f"{tuple(index.shape)}, got weight {tuple(weight.shape)}")
    with stage("combining"):  # the candidates' weighted sums (N3's neighbour volumes, Eq. 11)
        weight = weight.to(values.dtype)
        if under_transform(values, weight):  # the blocked kernel decides on index values: see .transforms
            return candidate_sum_gathered(values, index, weight)
        bands = key_bands(index, _rows(block_size, b * s * values.shape[1], nq), values.shape[1])
        return _CandidateSum.apply(values, weight, index, bands)


def candidate_sum_gathered(values: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    """The direct form of :func:`candidate_sum`: gather ``(B, Nq, M, D)``, then contract (the reference)."""
    return torch.einsum("bqmd,bqms->bqsd", gather(values, index), weight.to(values.dtype))


def _band_sq_distances(e: Tensor, sq: Tensor, q0: int, q1: int, lo: int, hi: int) -> Tensor:
    """``|e_q|^2 + |e_n|^2 - 2 <e_q, e_n>`` for queries q0..q1 against keys lo..hi, unclamped: ``(b, bq, L)``."""
    return sq[:, q0:q1].unsqueeze(-1) + sq[:, lo:hi].unsqueeze(-2) - 2 * e[:, q0:q1] @ e[:, lo:hi].transpose(1, 2)


class _CandidateSqDistances(torch.autograd.Function):
    """:func:`candidate_sq_distances` blocked; as :class:`_CandidateSum`, a second derivative uses the direct form."""

    @staticmethod
    def forward(e: Tensor, index: Tensor, bands: list) -> Tensor:
        b = e.shape[0]
        sq = (e * e).sum(-1)
        out = e.new_empty(b, *index.shape)
        for q0, q1, lo, hi in bands:
            raw = _band_sq_distances(e, sq, q0, q1, lo, hi)
            out[:, q0:q1] = raw.clamp_min_(0).gather(2, (index[q0:q1] - lo).expand(b, -1, -1))
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        e, index, bands = inputs
        ctx.save_for_backward(e, index)
        ctx.bands = bands

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        e, index = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the gradient of the direct form, differentiable
            # d/de_q of |e_q - e_n|^2 = 2 (e_q - e_n); d/de_n = 2 (e_n - e_q)
            diff = 2 * grad_out.unsqueeze(-1) * (e.unsqueeze(2) - gather(e, index))  # (b, q, m, d)
            grad_e = diff.sum(2).index_add(1, index.flatten(), -diff.flatten(1, 2))
            return grad_e, None, None
        b = e.shape[0]
        sq = (e * e).sum(-1)
        grad_e = e.new_zeros(e.shape)  # row-major, as grad_values above
        for q0, q1, lo, hi in ctx.bands:
            raw = _band_sq_distances(e, sq, q0, q1, lo, hi)
            g = raw.new_zeros(raw.shape).scatter_add_(2, (index[q0:q1] - lo).expand(b, -1, -1), grad_out[:, q0:q1])
            g = g.masked_fill_(raw < 0, 0.0)  # clamp_min(0): no gradient where round-off went below zero
            # d/de_q of |e_q - e_n|^2 = 2 (e_q - e_n); d/de_n = 2 (e_n - e_q)
            eq, en = e[:, q0:q1], e[:, lo:hi]
            grad_e[:, q0:q1] += 2 * (g.sum(2, keepdim=True) * eq - g @ en)
            grad_e[:, lo:hi] += 2 * (g.sum(1).unsqueeze(-1) * en - g.transpose(1, 2) @ eq)
        return grad_e, None, None


def candidate_sq_distances_gathered(e: Tensor, index: Tensor) -> Tensor:
    """The direct form of :func:`candidate_sq_distances`: gather the candidates, subtract, square, sum."""
    return (e.unsqueeze(2) - gather(e, index)).square().sum(-1)


def candidate_sq_distances(e: Tensor, index: Tensor, block_size: int | None = None) -> Tensor:
    """Squared euclidean distances ``|e_q - e_{index[q, m]}|^2`` at the candidates only.

    Queries and keys are the same items (self-similarity, as in the N3 block). Computed per
    block of queries against the block's key band; the backward recomputes each block, so
    autograd holds ``e`` and ``index`` only.

    Shape:
        e: ``(B, N, d)``; index: ``(N, M)`` -> ``(B, N, M)``.
    """
    check_tensor("e", e, ndim=3)
    _check_index(index)
    if index.shape[0] != e.shape[1]:
        raise ValueError(f"index must list candidates for every one of the N={e.shape[1]} items, "
                         f"got index {tuple(index.shape)}")
    with stage("similarity"):  # scoring the query-candidate pairs
        if under_transform(e):  # see .transforms
            return candidate_sq_distances_gathered(e, index)
        b, n = e.shape[:2]
        if (block_size is None or block_size >= n) and b * n * n <= DENSE_ELEMENTS:
            # one block of few items: its formula under plain autograd (no key bands read on the host, no Function)
            raw = _band_sq_distances(e, (e * e).sum(-1), 0, e.shape[1], 0, e.shape[1])
            return raw.clamp_min(0).gather(2, index.expand(e.shape[0], -1, -1))
        bands = key_bands(index, _rows(block_size, e.shape[0] * e.shape[1], index.shape[0]), e.shape[1])
        return _CandidateSqDistances.apply(e, index, bands)
