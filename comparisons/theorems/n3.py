"""Continuous k-NN (Ploetz & Roth 2018, Eqs. 8-10) and the N3 block."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from neighborhoods.functional import continuous_knn
from operators import N3Block1d, N3Block2d

from .base import Trial, describe, max_error, randn, theorem

SHAPES = ((7,), (3, 9), (2, 4, 12))


def knn_weights_by_loop(scores: Tensor, k: int, t: Tensor) -> Tensor:
    """Eqs. 8-10 one query at a time with plain loops and the naive formulas.

    For every query: w_1 = exp(a / t) / sum exp(a / t) (shifted by the max); for j >= 1,
    a <- a + log(1 - w_j), w_{j+1} = softmax(a / t). Moderate temperatures only.
    """
    flat = scores.reshape(-1, scores.shape[-1])
    temps = t.expand(scores.shape[:-1]).reshape(-1)
    rows = []
    for q in range(flat.shape[0]):
        alpha, cols = flat[q], []
        for _ in range(k):
            logits = alpha / temps[q]
            e = torch.exp(logits - logits.max())
            w = e / e.sum()
            cols.append(w)
            alpha = alpha + torch.log(1 - w)
        rows.append(torch.stack(cols, -1))
    return torch.stack(rows).reshape(*scores.shape, k)


@theorem("continuous_knn==loop", "continuous_knn equals a plain-loop implementation of Eqs. 8-10 "
         "(scalar and per-query temperature, forward and gradients)")
def continuous_knn_loop(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape in SHAPES:
        for k in (1, 3, shape[-1]):
            for per_query in (False, True):
                s = randn(generator, *shape, dtype=dtype)
                t_shape = shape[:-1] if per_query else ()
                t = (torch.rand(t_shape, generator=generator, dtype=dtype) * 1.5 + 0.5).requires_grad_()
                err = max_error(lambda: continuous_knn(s, k, t), lambda: knn_weights_by_loop(s, k, t), [s, t],
                                generator)
                yield Trial(describe(scores=shape, k=k, per_query_t=per_query), err)


# float32: at t = 0.01 the gradient w.r.t. t sums terms of O(1 / t^2) = O(1e4) that cancel where the
# softmax saturates, so float32 keeps it to ~1e-3 of its scale. Against float64 on the same float32
# inputs (seeds 0-15), torch.softmax's gradients are off by up to 1.19e-3 of their scale, the C rounds'
# (knn_rounds.c) by 1.19e-3 and the torch rounds' by 8.5e-4: two float32 computations may differ by
# the sum, and did by 1.86e-3 (seed 2)
@theorem("continuous_knn.k1==softmax", "with k = 1 the continuous k-NN weights are softmax(scores / t)",
         float32=3e-3)
def continuous_knn_softmax(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape in SHAPES:
        for t_value in (1e-2, 0.7, 30.0):
            s = randn(generator, *shape, dtype=dtype)
            t = torch.full(shape[:-1], t_value, dtype=dtype, requires_grad=True)
            err = max_error(lambda: continuous_knn(s, 1, t)[..., 0], lambda: torch.softmax(s / t.unsqueeze(-1), -1),
                            [s, t], generator)
            yield Trial(describe(scores=shape, t=t_value), err)


@theorem("continuous_knn.t->0==hard_topk", "at t = 1e-3 on well-separated scores (gaps >= 0.05) the k weight "
         "vectors are the one-hot indicators of the k best candidates, best first", float64=1e-6, float32=1e-6)
def continuous_knn_hard(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape in SHAPES:
        for k in (1, 2, shape[-1]):
            m = shape[-1]
            ranks = torch.rand(*shape, generator=generator).argsort(-1).to(dtype)  # a permutation of 0..m-1
            s = ranks * 0.05 + 0.3 * torch.rand(shape[:-1], generator=generator, dtype=dtype).unsqueeze(-1)
            best = s.topk(k, dim=-1).indices  # distinct scores: topk's order is unambiguous
            hard = F.one_hot(best, m).to(dtype).transpose(-1, -2)  # (..., m, k)
            err = (continuous_knn(s, k, 1e-3) - hard).abs().max().item()
            yield Trial(describe(scores=shape, k=k, t=1e-3), err)


def patch_attention_by_formula(block: N3Block2d | N3Block1d, x: Tensor, window_all: bool = True,
                               database: Tensor | None = None, exclude_self: bool = True) -> Tensor:
    """k = 1 with every other item a candidate: soft attention over items, written out.

    ``N_1(q) = sum_{m != q} softmax_m(-|E_q - E_m|^2 / t_q) X_m`` where E and X are the
    im2col'd embedding and input (tokens for set data), ``t_q = exp(mean log_t over q's
    patch) * temp_bias``; the image is the col2im average of the patch volumes; the output
    is ``[x, N_1 - x]``. With a ``database`` d, ``E_m`` and ``X_m`` are d's items (cross
    matching; ``m != q``: not the item at the query's position); ``exclude_self=False``
    sums over every ``m``.
    """
    sel = block.selector
    d = x if database is None else database
    e, e_d, log_t = sel.embedding(x), sel.embedding(d), sel.temperature(x)
    if sel.patches is not None:
        p, st = sel.patches.patch_size, sel.patches.stride
        items = [F.unfold(t, p, stride=st).transpose(1, 2) for t in (e, e_d, d, log_t)]
    else:
        items = [t.transpose(1, 2) for t in (e, e_d, d, log_t)]
    e_i, e_m, x_m, lt_i = items
    d2 = ((e_i.unsqueeze(2) - e_m.unsqueeze(1)) ** 2).sum(-1)  # (b, q, n)
    temp = lt_i.mean(-1).exp() * sel.temp_bias
    logits = -d2 / temp.unsqueeze(-1)
    if exclude_self:
        logits = logits.masked_fill(torch.eye(d2.shape[-1], dtype=torch.bool), float("-inf"))
    vol = torch.softmax(logits, -1) @ x_m  # (b, q, f)
    if sel.patches is not None:
        fold = dict(output_size=x.shape[2:], kernel_size=p, stride=st)
        vol = F.fold(vol.transpose(1, 2), **fold) / F.fold(torch.ones_like(vol).transpose(1, 2), **fold)
    else:
        vol = vol.transpose(1, 2)
    return torch.cat([x, vol - x], dim=1)


@theorem("n3block.k1==patch_attention", "N3Block2d with k = 1 and a window covering the image (and N3Block1d on "
         "sets) is softmax attention of each patch over all other patches with logits -|E_q - E_m|^2 / t_q, "
         "folded back by averaging overlaps")
def n3_k1(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for (h, w), patch, stride, window in (((8, 8), 4, 2, 8), ((8, 8), 4, 2, None), ((10, 6), (4, 2), (2, 2), None),
                                          ((9, 9), 3, 3, 9)):
        block = N3Block2d(2, k=1, patch_size=patch, patch_stride=stride, window=window, embed_channels=3,
                          hidden_channels=4, temp_bias=0.5, dtype=dtype, project=False).eval()
        x = randn(generator, 2, 2, h, w, dtype=dtype)
        err = max_error(lambda: block(x), lambda: patch_attention_by_formula(block, x), [x, *block.parameters()],
                        generator)
        yield Trial(describe(x=x.shape, patch=patch, stride=stride, window=window), err)
    block = N3Block1d(3, k=1, embed_channels=2, hidden_channels=4, temp_bias=0.5, dtype=dtype, project=False).eval()
    x = randn(generator, 2, 3, 7, dtype=dtype)
    err = max_error(lambda: block(x), lambda: patch_attention_by_formula(block, x), [x, *block.parameters()], generator)
    yield Trial(describe(block="N3Block1d", x=x.shape), err)


@theorem("n3block.cross.k1==patch_attention", "N3Block2d / N3Block1d(x, database=d) with k = 1 and a window covering "
         "the image is softmax attention of each patch of x over the patches of d (all, or all but the one at the "
         "query's position), logits -|E_q - E'_m|^2 / t_q, d's patches folded back")
def n3_cross_k1(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for (h, w), patch, stride, exclude_self in (((8, 8), 4, 2, True), ((10, 6), (4, 2), (2, 2), False),
                                                ((9, 9), 3, 3, True)):
        block = N3Block2d(2, k=1, patch_size=patch, patch_stride=stride, window=None, embed_channels=3,
                          hidden_channels=4, temp_bias=0.5, dtype=dtype, project=False,
                          exclude_self=exclude_self).eval()
        x, d = randn(generator, 2, 2, h, w, dtype=dtype), randn(generator, 2, 2, h, w, dtype=dtype)
        err = max_error(lambda: block(x, database=d),
                        lambda: patch_attention_by_formula(block, x, database=d, exclude_self=exclude_self),
                        [x, d, *block.parameters()], generator)
        yield Trial(describe(x=x.shape, patch=patch, stride=stride, exclude_self=exclude_self), err)
    for exclude_self in (True, False):
        block = N3Block1d(3, k=1, embed_channels=2, hidden_channels=4, temp_bias=0.5, dtype=dtype, project=False,
                          exclude_self=exclude_self).eval()
        x, d = randn(generator, 2, 3, 7, dtype=dtype), randn(generator, 2, 3, 7, dtype=dtype)
        err = max_error(lambda: block(x, database=d),
                        lambda: patch_attention_by_formula(block, x, database=d, exclude_self=exclude_self),
                        [x, d, *block.parameters()], generator)
        yield Trial(describe(block="N3Block1d", x=x.shape, exclude_self=exclude_self), err)
