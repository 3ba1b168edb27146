"""Top-k with a total, documented order: larger first, ties to the lower index, NaN last.

Every hard selection in the zoo (ConvNN's k-NN, the KNN block, N3's hard mode) ranks by this
one rule, so results never depend on which of several equal scores ``torch.topk`` happens to
return:

* larger scores first; ``+inf`` before every finite score, ``-inf`` after;
* equal scores (``-0.0 == 0.0`` included) in increasing index order;
* ``NaN`` after everything, ``-inf`` included, NaNs among themselves by index.

A NaN therefore never crashes a selection and never changes which finite scores a row picks;
it only lands in the row's last places.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..checks import check_int, check_tensor
from .native import top_k_scan
from .transforms import under_transform


# Keys of NaN and of forbidden entries: below every float's key (-inf's key is at least int64's minimum + 2**52 - 1).
_NAN = torch.iinfo(torch.int64).min + 1
_FORBIDDEN = torch.iinfo(torch.int64).min


def _total_order_key(scores: Tensor) -> Tensor:
    """An integer per score whose ``<`` is the documented order (larger key = ranked earlier).

    IEEE floats compare like their bit patterns read as sign-magnitude integers; flipping the
    magnitude bits of negative numbers turns that into two's complement order. ``-0.0`` is first
    made ``+0.0`` (they compare equal as floats, so they must tie) and NaN becomes the smallest key.
    """
    int_type = {torch.float64: torch.int64, torch.float32: torch.int32,
                torch.float16: torch.int16, torch.bfloat16: torch.int16}[scores.dtype]
    bits = (scores + 0.0).view(int_type)  # + 0.0 maps -0.0 to +0.0 and keeps everything else
    key = torch.where(bits < 0, bits ^ torch.iinfo(int_type).max, bits)
    return key.long().masked_fill(scores.isnan(), _NAN)


def _top_k_exact(scores: Tensor, k: int, forbidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The documented order for any rows, ``(R, n) -> (R, k)``: threshold, then ties by index.

    ``torch.topk`` finds the k-th key; everything strictly above it is in, and of the entries
    equal to it the lowest-indexed ones fill the remaining places. Runs on integer keys, so
    NaN and +-inf take part like any other value; ``forbidden`` entries (bool ``(R, n)``) rank
    after everything, NaN included.
    """
    n = scores.shape[-1]
    key = _total_order_key(scores)
    if forbidden is not None:
        key = key.masked_fill(forbidden, _FORBIDDEN)
    kth = key.topk(k, dim=-1).values[..., -1:]
    above = key > kth
    at = key == kth
    need = k - above.sum(-1, keepdim=True)
    chosen = above | (at & (at.cumsum(-1) <= need))
    # distinct values (n - position) among the chosen: topk returns them in ascending index
    rank = torch.arange(n, 0, -1, device=scores.device)
    idx = n - torch.where(chosen, rank, torch.zeros_like(rank)).topk(k, dim=-1).values
    order = key.gather(-1, idx).sort(dim=-1, descending=True, stable=True).indices
    idx = idx.gather(-1, order)
    return scores.gather(-1, idx), idx


#: rows shorter than this go straight to one ``torch.topk`` (pruning costs more than it saves: on a
#: 2-core Xeon, float32, k 9, 2 MiB blocks, pruned / whole-row time was 1.58 at 1024 keys, 1.03 at
#: 2048, 0.97 at 3072, 0.87 at 4096; ConvNN2d's 32x32 forward ran 7% faster without pruning)
PRUNE_MIN_KEYS = 3072


def chunk_width(n: int, k: int) -> int:
    """Keys per chunk of :func:`top_k_rows`'s pruning for rows of ``n`` keys, ``0`` for no pruning.

    ``round(sqrt(n / k))`` balances the two smaller top-k searches (over the ``n / g`` chunk
    maxima and over the ``k g`` candidate keys); no pruning when rows are shorter than
    :data:`PRUNE_MIN_KEYS` or the candidates would not be fewer than half the keys.
    """
    if n < PRUNE_MIN_KEYS:
        return 0
    g = max(2, round(math.sqrt(n / max(k, 1))))
    return g if (k + 1) * g <= n // 2 and n // g > k + 1 else 0


def top_k_rows(scores: Tensor, k: int, forbidden_rows: Callable[[Tensor], Tensor] | None = None
               ) -> tuple[Tensor, Tensor]:
    """:func:`top_k_stable` of a ``(R, n)`` block whose forbidden entries already hold ``-inf``.

    On the CPU, float32/float64, the C scan of :mod:`.native` (``top_k_scan.c``) finds every
    row's k best in one pass; the rows it leaves open (k-th value ``-inf`` or NaN) take the
    exact rule. Without it (no C compiler, or a GPU, or a traced call) the torch path below.
    Long rows (:func:`chunk_width`) are pruned first, exactly: the keys are split into ``n / g``
    chunks of ``g`` (key ``j`` in chunk ``j mod (n / g)``, one strided ``amax``); where the k-th
    largest chunk maximum is strictly above the (k+1)-th and the row holds no NaN, the row's k
    best keys all lie in those k chunks (every key outside is at most the (k+1)-th maximum, and
    the k maxima inside are above it), so only those ``k g`` keys, in increasing index order,
    are searched. Other rows, and every row when rows are short, take :func:`_top_k_rows_full`.
    The result is the same in every case.
    """
    if torch.jit.is_tracing():
        # _total_order_key views float bits as integers (Tensor.view(dtype)), which TorchScript's
        # alias analysis rejects with an internal assert: say so at once
        raise RuntimeError("torch.jit.trace cannot trace the stable top-k of hard k-NN selection (ConvNN, the KNN "
                           "block, N3's hard mode): it views float scores as integers, which TorchScript does not "
                           "support; use torch.export.export or torch.compile instead")
    if under_transform(scores):
        return _top_k_rows_full(scores, k, forbidden_rows)
    scanned = top_k_scan(scores.detach(), k)
    if scanned is not None:
        return _settle_scanned(scores, k, *scanned, forbidden_rows)
    g = chunk_width(scores.shape[-1], k)
    if g and scores.shape[0]:
        return _top_k_pruned(scores, k, g, forbidden_rows)
    return _top_k_rows_full(scores, k, forbidden_rows)


def _settle_scanned(scores: Tensor, k: int, values: Tensor, idx: Tensor,
                    forbidden_rows: Callable[[Tensor], Tensor] | None) -> tuple[Tensor, Tensor]:
    """:func:`top_k_rows` from the C scan's winners: rows whose k-th value is ``-inf`` or NaN go through the exact rule.

    The scan settles every row whose k-th value is finite or ``+inf`` (NaN and forbidden keys are
    then all below the winners); in the others a forbidden ``-inf`` must rank after a genuine one
    and after NaN, which only ``forbidden_rows`` can tell.
    """
    rows = (~(values[:, k - 1] > float("-inf"))).nonzero().squeeze(1)
    if scores.requires_grad:
        values = scores.gather(1, idx)  # the same numbers, on autograd's tape
    if rows.numel():
        sub = None if forbidden_rows is None else (lambda at: forbidden_rows(rows[at]))
        values[rows], idx[rows] = _top_k_rows_full(scores[rows], k, sub)
    return values, idx


def _top_k_pruned(scores: Tensor, k: int, g: int, forbidden_rows: Callable[[Tensor], Tensor] | None
                  ) -> tuple[Tensor, Tensor]:
    """:func:`top_k_rows` through the chunk maxima (its docstring says why the result is the same)."""
    r, n = scores.shape
    c = n // g  # chunks; the n - g c keys of the tail are candidates of every row
    maxima = scores[:, : g * c].unflatten(1, (g, c)).amax(1)  # (r, c); NaN propagates
    top, chunk = maxima.topk(k + 1, dim=-1)  # NaN ranks first
    sure = (top[:, k - 1] > top[:, k]) & ~top[:, 0].isnan()
    chunk = chunk[:, :k].sort(-1).values
    offsets = torch.arange(0, g * c, c, device=scores.device).view(1, g, 1)
    cand = (offsets + chunk.unsqueeze(1)).view(r, g * k)  # increasing key index along each row
    if n > g * c:
        cand = torch.cat([cand, torch.arange(g * c, n, device=scores.device).expand(r, -1)], 1)
    # the k best are strictly above every other key: no NaN, no forbidden -inf, no tie at the border
    values, pos = _top_k_rows_full(scores.gather(1, cand), k, None)
    idx = cand.gather(1, pos)
    rows = (~sure).nonzero().squeeze(1)
    if rows.numel():
        sub = None if forbidden_rows is None else (lambda at: forbidden_rows(rows[at]))
        values[rows], idx[rows] = _top_k_rows_full(scores[rows], k, sub)
    return values, idx


def _top_k_rows_full(scores: Tensor, k: int, forbidden_rows: Callable[[Tensor], Tensor] | None = None
                     ) -> tuple[Tensor, Tensor]:
    """:func:`top_k_rows` over whole rows.

    One ``torch.topk(k + 1)`` settles every row whose k-th and (k+1)-th values differ (and that
    holds no NaN, which ``topk`` ranks first); only the other rows go through
    :func:`_top_k_exact`. Where no row has two equal values among its k + 1 best (the usual case
    for real-valued scores), ``topk``'s own order is the documented one and is returned as is;
    otherwise the k winners are re-sorted by (value, index). ``forbidden_rows(rows)`` returns those rows' forbidden entries
    ``(len(rows), n)`` so that a forbidden ``-inf`` ranks after a genuine one (and after NaN).
    """
    n = scores.shape[-1]
    if k == n:
        rows = torch.arange(scores.shape[0], device=scores.device)
        return _top_k_exact(scores, k, None if forbidden_rows is None else forbidden_rows(rows))
    values, idx = scores.topk(k + 1, dim=-1)
    transformed = under_transform(scores)
    if not transformed and bool((values[:, 1:] < values[:, :-1]).all()):
        # k + 1 distinct values (no NaN: it compares false) in every row: topk's order is the documented one
        return values[:, :k], idx[:, :k]
    # topk ranks NaN above +inf, so a row holding a NaN shows one in its first place
    exact = (values[:, k - 1] == values[:, k]) | values[:, 0].isnan()
    idx = idx[:, :k].sort(dim=-1).values  # the k winners by index, then a stable sort by value
    values = scores.gather(-1, idx)
    order = values.sort(dim=-1, descending=True, stable=True).indices
    values, idx = values.gather(-1, order), idx.gather(-1, order)
    if transformed:
        # no data-dependent row subset under compile/export/trace/vmap: every row through the exact
        # rule, kept where it is needed (the same result, one extra pass)
        rows = torch.arange(scores.shape[0], device=scores.device)
        forbidden = None if forbidden_rows is None else forbidden_rows(rows)
        exact_values, exact_idx = _top_k_exact(scores, k, forbidden)
        pick = exact.unsqueeze(-1)
        return torch.where(pick, exact_values, values), torch.where(pick, exact_idx, idx)
    rows = exact.nonzero().squeeze(1)
    if rows.numel():
        forbidden = None if forbidden_rows is None else forbidden_rows(rows)
        values[rows], idx[rows] = _top_k_exact(scores[rows], k, forbidden)
    return values, idx


def top_k_stable(scores: Tensor, k: int, forbidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Top-k of ``scores`` along the last axis in the documented order (module docstring).

    Costs about one ``torch.topk(k + 1)`` (:func:`top_k_rows`); the k winners are sorted by
    (score desc, index asc).

    Args:
        scores: ``(*lead, n)`` floating point.
        k: ``1 <= k <= n``.
        forbidden: bool, broadcastable to ``scores``: entries ranked after every other one
            (NaN included); their returned value is ``-inf``.

    Returns:
        ``(values, indices)``, both ``(*lead, k)``.
    """
    check_tensor("scores", scores)
    n = scores.shape[-1]
    k = check_int("k", k, minimum=1)
    if k > n:
        raise ValueError(f"k must be <= the size of the last axis of scores, got k={k}, scores {tuple(scores.shape)}")
    lead = scores.shape[:-1]
    flat = scores.reshape(-1, n)
    forbidden_rows = None
    if forbidden is not None:
        if not isinstance(forbidden, Tensor) or forbidden.dtype != torch.bool:
            raise TypeError(f"forbidden must be a bool tensor, got {type(forbidden).__name__}"
                            f"{'' if not isinstance(forbidden, Tensor) else f' of dtype {forbidden.dtype}'}")
        try:
            mask = forbidden.expand(scores.shape).reshape(-1, n)
        except RuntimeError:
            raise ValueError(f"forbidden must broadcast to scores {tuple(scores.shape)}, "
                             f"got shape {tuple(forbidden.shape)}") from None
        flat = flat.masked_fill(mask, float("-inf"))
        forbidden_rows = mask.__getitem__
    values, idx = top_k_rows(flat, k, forbidden_rows)
    return values.view(*lead, k), idx.view(*lead, k)
