"""Blocked hard k-nearest-neighbour search.

Axis legend: ``b`` batch, ``q`` queries, ``n`` keys, ``k`` neighbours.

The full score matrix is never held: queries are scored ``block_size`` at a time against
all keys and each block keeps only its top k, so peak memory is ``B * block_size * Nk``
scores, not ``B * Nq * Nk``. The block size comes from :func:`auto_block_size` unless given.
On the CPU, where no block size is given and there are at least ``TILE_MIN_KEYS`` keys, the C
kernel of ``tile_knn.c`` runs the same search a tile of six queries at a time, each tile's scores scanned while they are still in the cache
(:func:`_tile_search` says where it applies).
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch
from torch import Tensor

from ..checks import check_int, check_tensor
from .similarity import PairScorer, larger_is_nearer
from .stages import stage
from .native import scan_selects, tile_knn
from .topk import top_k_rows, top_k_stable
from .transforms import under_transform

__all__ = ["BLOCK_BYTES", "SCAN_BLOCK_BYTES", "SCAN_BLOCK_QUERIES", "auto_block_size", "available_memory", "fused_reason", "knn", "top_k_stable"]

#: Most bytes one query block's scores (and their temporaries) may take, whatever memory is free:
#: a block is scored, pruned and reduced to its k best while it is still in the CPU's cache
#: (on a 2-core Xeon, B = 8 at 64x64: 8 MiB score blocks ran 1.7x faster than 32 MiB ones, and
#: 2 MiB ones lost as much to per-block overhead); on a GPU larger blocks only compete with the
#: activations.
BLOCK_BYTES = 16 * 2 ** 20
#: the budget where the C scan selects (CPU, float32/float64; :mod:`.native`), which keeps no
#: score-sized temporary beside the block, and at most SCAN_BLOCK_QUERIES queries per block: the
#: block's matmuls run faster with more query rows, up to a point (on a 2-core AMD EPYC, B = 8,
#: cosine k-NN of all tokens, 64 / 128 / 256 / 512 / 1024 / 2048 queries per block: 64x64 in
#: 310 / 269 / 226 / 206 / 215 / 237 ms, 32x32 in 45 / 32 / 28 / 25 / 32 / 31 ms)
SCAN_BLOCK_BYTES = 64 * 2 ** 20
SCAN_BLOCK_QUERIES = 512
#: below this many bytes of score temporaries for all queries at once, free memory is not read
#: (one file read per call, a cost at small sizes; no machine runs with less free)
_SMALL_BYTES = 4 * 2 ** 20

# Score-sized temporaries alive at once per metric (the score block itself included):
# euclidean adds the squared-norm sum and the product; chebyshev broadcasts (q, n, D) twice.
_TEMPORARIES = {"cosine": 2, "dot": 2, "euclidean": 4}


def available_memory(device: torch.device) -> int:
    """Bytes free on ``device``: CUDA's free memory, or the host's ``MemAvailable``."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def auto_block_size(batch: int, num_queries: int, num_keys: int, dim: int, metric: str, dtype: torch.dtype,
                    device: torch.device) -> int:
    """Queries per block: the most whose score temporaries fit ``min(BLOCK_BYTES, free / 8)``.

    A query row costs ``batch * num_keys * itemsize`` bytes per score-sized temporary (2 for
    ``cosine``/``dot``, 4 for ``euclidean``, ``2 * dim + 2`` for ``chebyshev``; one fewer, and
    ``SCAN_BLOCK_BYTES`` and at most ``SCAN_BLOCK_QUERIES`` queries where the C scan selects). At least one
    query per block, at most ``num_queries``. Under ``torch.compile`` the free memory is not
    read (``BLOCK_BYTES`` alone), so tracing stays free of side effects, nor when all queries'
    temporaries take at most 4 MiB.
    """
    budget, temporaries, most = BLOCK_BYTES, _TEMPORARIES.get(metric, 2 * dim + 2), num_queries
    if metric != "chebyshev" and scan_selects(device, dtype):
        budget, temporaries, most = SCAN_BLOCK_BYTES, temporaries - 1, min(num_queries, SCAN_BLOCK_QUERIES)
    per_query = batch * num_keys * torch.finfo(dtype).bits // 8 * temporaries
    if not torch.compiler.is_compiling() and per_query * num_queries > _SMALL_BYTES:
        budget = min(budget, available_memory(device) // 8)
    return max(1, min(most, budget // max(per_query, 1)))


@functools.cache
def _triton_installed() -> bool:
    # looked up once per process: find_spec walks sys.path, a cost on every small call
    return importlib.util.find_spec("triton") is not None


def _fused_device(queries: Tensor) -> bool:
    """Whether the fused kernel can run where ``queries`` live: CUDA, or CPU under ``TRITON_INTERPRET=1``."""
    if queries.device.type == "cuda":
        return True
    return queries.device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def fused_reason(queries: Tensor, k: int, metric: str) -> str | None:
    """Why the fused Triton kernel cannot run this search (``None`` when it can).

    It needs Triton installed, a CUDA tensor (or Triton's CPU interpreter, ``TRITON_INTERPRET=1``),
    float32, a metric it scores (``cosine``, ``dot``, ``euclidean``) and ``k <= 64``.
    """
    if not _fused_device(queries):
        return f"the tensors are on {queries.device.type}, not CUDA (nor CPU with TRITON_INTERPRET=1)"
    if not _triton_installed():
        return "triton is not installed (pip install neighbor-zoo[gpu])"
    if queries.dtype != torch.float32:
        return f"the kernel computes in float32, got {queries.dtype}"
    if metric not in ("cosine", "dot", "euclidean"):
        return f"the kernel does not score metric={metric!r}"
    if k > 64:
        return f"the kernel keeps at most 64 neighbours in registers, got k={k}"
    return None


#: fewest keys for which :func:`knn` takes the tiled C kernel: with fewer, a block's scores stay in the cache
#: anyway and the kernel's packing and padding cost what it saves (cosine, exclude, k 8, new / blocked in one
#: process, 1 and 2 threads, 2-core AMD EPYC: B 64 with 4 keys 1.68x / 1.33x, 16 keys 1.06x / 0.64x, 64 keys
#: 1.01x / 0.99x; B 8 with 144 keys 1.03x / 0.94x, 256 keys 1.00x / 1.11x; B 64 with 256 keys 0.78x / 0.77x,
#: B 8 with 576 keys 0.74x / 0.79x)
TILE_MIN_KEYS = 256


def _tile_search(queries: Tensor, keys: Tensor, k: int, metric: str, exclude: Tensor | None
                 ) -> tuple[Tensor, Tensor] | None:
    """:func:`knn` by the C kernel that scores and scans a tile of queries at a time (tile_knn.c), or ``None``.

    ``None`` where the kernel does not apply (fewer than :data:`TILE_MIN_KEYS` keys, not an eager
    float32/float64 CPU search, scores autograd must record, no compiled library) or where a row's k-th value is ``-inf`` or NaN
    (the scan leaves such rows to the exact rule, which needs the blocked search's scores): the
    caller then runs the blocked search.
    """
    if (keys.shape[1] < TILE_MIN_KEYS or not scan_selects(queries.device, queries.dtype)
            or under_transform(queries, keys)
            or (torch.is_grad_enabled() and (queries.requires_grad or keys.requires_grad))):
        return None
    b, nq = queries.shape[:2]
    with stage("similarity"):  # per token: normalisation (cosine) or squared norms (euclidean)
        scorer = PairScorer(queries, keys, metric)
    with stage("fused"):  # the pairwise scores and their top k, a tile of queries at a time
        squares = (scorer.query_sq, scorer.key_sq) if metric == "euclidean" else (None, None)
        found = tile_knn(scorer.queries, scorer.keys, k, *squares,
                         exclude=None if exclude is None else exclude.view(-1, nq).expand(b, nq))
        if found is None:
            return None
        values, indices = found
        if not bool((values[..., k - 1] > float("-inf")).all()):
            return None
    return (values if larger_is_nearer(metric) else values.neg_()), indices


def knn(queries: Tensor, keys: Tensor, k: int, metric: str = "cosine", *, block_size: int | None = None,
        key_mask: Tensor | None = None, exclude: Tensor | None = None,
        fused: bool | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest keys of every query, best first, in :func:`top_k_stable`'s order.

    Ties go to the lower key index; a NaN score ranks after every other candidate (so one
    non-finite token only reorders its own sample's last places) and a masked or excluded
    key after that. Per-token work (normalisation, squared norms) is done once for all blocks.

    Args:
        queries: ``(B, Nq, D)``.
        keys: ``(B, Nk, D)``.
        k: neighbours per query, ``1 <= k <=`` the number of keys a query may choose.
        metric: ``cosine`` | ``dot`` (larger is nearer) or ``euclidean`` (squared) |
            ``chebyshev`` (smaller is nearer); see :func:`similarity`.
        block_size: queries scored at a time, ``None`` for :func:`auto_block_size` (or, on
            the CPU, the tiled C kernel: same neighbours, scores up to round-off, as the
            blocked search); the result does not depend on it.
        key_mask: ``(Nk,)`` or ``(B, Nk)`` bool, keys that may be chosen.
        exclude: ``(Nq,)`` or ``(B, Nq)`` long, one key per query that may not be chosen
            (the query itself, when slot 0 is reserved for it).
        fused: use the fused Triton kernel (:mod:`~neighborhoods.functional.triton_knn`):
            ``None`` where :func:`fused_reason` allows it (CUDA, float32, Triton installed),
            ``True`` always (``ValueError`` saying why when it cannot), ``False`` never. Its
            neighbours are the blocked path's up to round-off in the scores (a different
            summation order), with the same tie rule; its scores carry no gradient.

    Returns:
        ``(scores, indices)``, both ``(B, Nq, k)``: the metric's values (similarities
        descending, distances ascending) and the key indices.
    """
    check_tensor("queries", queries, ndim=3)
    check_tensor("keys", keys, ndim=3)
    k = check_int("k", k, minimum=1)
    if block_size is not None:
        block_size = check_int("block_size", block_size, minimum=1)
    b, nq, _ = queries.shape
    nk = keys.shape[1]
    allowed = nk
    if key_mask is not None:
        if key_mask.dtype != torch.bool or key_mask.shape not in ((nk,), (b, nk)):
            raise ValueError(f"key_mask must be a bool tensor of shape ({nk},) or ({b}, {nk}), "
                             f"got dtype {key_mask.dtype}, shape {tuple(key_mask.shape)}")
        # a count read off the mask's values: checked in eager mode only (under a transform a
        # value cannot steer Python; the zoo's own masks always leave k candidates)
        allowed = nk if under_transform(queries, key_mask) else int(key_mask.sum(-1).min())
    if exclude is not None:
        if exclude.dtype != torch.long or exclude.shape not in ((nq,), (b, nq)):
            raise ValueError(f"exclude must be a long tensor of shape ({nq},) or ({b}, {nq}), "
                             f"got dtype {exclude.dtype}, shape {tuple(exclude.shape)}")
        allowed = allowed - 1  # not -=: under jit.trace a size is a 0-d tensor, and -= would change nk too
    if k > allowed:
        raise ValueError(f"k must be <= the number of candidate keys, got k={k}, candidates={allowed}")
    if queries.shape[0] != keys.shape[0] or queries.shape[-1] != keys.shape[-1]:
        raise ValueError(f"queries (B, Nq, D) and keys (B, Nk, D) must agree in B and D, "
                         f"got queries {tuple(queries.shape)}, keys {tuple(keys.shape)}")
    if nq == 0:
        empty = queries.new_empty(b, 0, k)
        return empty, empty.long()
    if fused is not None and not isinstance(fused, bool):
        raise TypeError(f"fused must be None, True or False, got {fused!r}")
    # fused=None on a CPU tensor (the common case) asks nothing more: no reason is built to be dropped
    if fused or (fused is None and _fused_device(queries)):
        reason = fused_reason(queries, k, metric)
        if reason is None:
            from .triton_knn import fused_knn
            mask = None if key_mask is None else key_mask.view(-1, nk)
            excl = None if exclude is None else exclude.view(-1, nq)
            return fused_knn(queries.detach(), keys.detach(), k, metric, key_mask=mask, exclude=excl)
        if fused:
            raise ValueError(f"fused=True but the fused kernel cannot run: {reason}")
    if block_size is None and key_mask is None and metric != "chebyshev":
        found = _tile_search(queries, keys, k, metric, exclude)
        if found is not None:
            return found
    if block_size is None:
        block_size = auto_block_size(b, nq, nk, queries.shape[-1], metric, queries.dtype, queries.device)

    nearer_is_larger = larger_is_nearer(metric)
    with stage("similarity"):
        scorer = PairScorer(queries, keys, metric)
    forbidden_keys = None if key_mask is None else ~key_mask.view(-1, nk).expand(b, nk)
    exclude = None if exclude is None else exclude.view(-1, nq).expand(b, nq)
    all_scores, all_indices = [], []
    # one score buffer for every block (PairScorer.block says why); not where autograd records
    # the scores (out= has no derivative) or a transform traces them
    reuse = (nq > block_size and metric != "chebyshev" and not under_transform(queries, keys)
             and not (torch.is_grad_enabled() and (queries.requires_grad or keys.requires_grad)))
    buffer = queries.new_empty(b * block_size * nk) if reuse else None
    for start in range(0, nq, block_size):
        stop = min(start + block_size, nq)
        with stage("similarity"):
            out = None if buffer is None else buffer[: b * (stop - start) * nk].view(b, stop - start, nk)
            s = scorer.block(start, stop, out)  # (b, q, n), this block's own: edited in place below
        with stage("selection"):
            if not nearer_is_larger:
                s = s.neg_()  # larger is nearer from here on
            if forbidden_keys is not None:
                s.masked_fill_(forbidden_keys.unsqueeze(1), float("-inf"))
            ex = None
            if exclude is not None:
                ex = exclude[:, start:stop]
                s.scatter_(-1, ex.unsqueeze(-1), float("-inf"))
            rows_per_sample = stop - start

            def forbidden_rows(rows: Tensor, ex: Tensor | None = ex, q: int = rows_per_sample) -> Tensor:
                # rows index the flattened (b * q) block: sample rows // q, query rows % q
                sample = rows // q
                out = (forbidden_keys[sample] if forbidden_keys is not None
                       else torch.zeros(rows.numel(), nk, dtype=torch.bool, device=rows.device))
                if ex is not None:
                    out[torch.arange(rows.numel(), device=rows.device), ex[sample, rows % q]] = True
                return out

            values, indices = top_k_rows(s.view(-1, nk), k, forbidden_rows)
            # explicit sizes: with B = 0 a -1 could be anything
            values = values.view(b, rows_per_sample, k)
            all_scores.append(values if nearer_is_larger else values.neg_())
            all_indices.append(indices.view(b, rows_per_sample, k))
    if len(all_scores) == 1:
        return all_scores[0], all_indices[0]
    return torch.cat(all_scores, 1), torch.cat(all_indices, 1)
