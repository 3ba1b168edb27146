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

from collections.abc import Callable

import torch
from torch import Tensor

from ..checks import check_int, check_tensor
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


def top_k_rows(scores: Tensor, k: int, forbidden_rows: Callable[[Tensor], Tensor] | None = None
               ) -> tuple[Tensor, Tensor]:
    """:func:`top_k_stable` of a ``(R, n)`` block whose forbidden entries already hold ``-inf``.

    One ``torch.topk(k + 1)`` settles every row whose k-th and (k+1)-th values differ (and that
    holds no NaN, which ``topk`` ranks first); only the other rows go through
    :func:`_top_k_exact`. ``forbidden_rows(rows)`` returns those rows' forbidden entries
    ``(len(rows), n)`` so that a forbidden ``-inf`` ranks after a genuine one (and after NaN).
    """
    if torch.jit.is_tracing():
        # _total_order_key views float bits as integers (Tensor.view(dtype)), which TorchScript's
        # alias analysis rejects with an internal assert: say so at once
        raise RuntimeError("torch.jit.trace cannot trace the stable top-k of hard k-NN selection (ConvNN, the KNN "
                           "block, N3's hard mode): it views float scores as integers, which TorchScript does not "
                           "support; use torch.export.export or torch.compile instead")
    n = scores.shape[-1]
    if k == n:
        rows = torch.arange(scores.shape[0], device=scores.device)
        return _top_k_exact(scores, k, None if forbidden_rows is None else forbidden_rows(rows))
    values, idx = scores.topk(k + 1, dim=-1)
    # topk ranks NaN above +inf, so a row holding a NaN shows one in its first place
    exact = (values[:, k - 1] == values[:, k]) | values[:, 0].isnan()
    idx = idx[:, :k].sort(dim=-1).values  # the k winners by index, then a stable sort by value
    values = scores.gather(-1, idx)
    order = values.sort(dim=-1, descending=True, stable=True).indices
    values, idx = values.gather(-1, order), idx.gather(-1, order)
    if under_transform(scores):
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
