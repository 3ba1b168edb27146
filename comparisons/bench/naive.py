"""The all-pairs forms of ConvNN and the N3 block, written the way the seeds' codes compute them.

Both build the full ``N x N`` score matrix of every image in the batch, which is what makes
them run out of memory past a few thousand tokens; the benchmark runs them side by side
with the library's layers (same weights) and skips them where that matrix would not fit.
They share no code with the library's selection and aggregation paths.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from operators import ConvNN2d, N3Block2d


def convnn2d_all_pairs(layer: ConvNN2d, x: Tensor) -> Tensor:
    """ConvNN (cosine, every token a candidate) as similarity matrix + topk + gather + conv1d.

    ``S = X^T X`` over unit-norm tokens ``(B, N, N)``, the diagonal raised above every
    cosine so that each token is its own first neighbour, ``topk`` along the keys, the k
    neighbours gathered into ``(B, C, N k)`` and a Conv1d with kernel = stride = k
    (Algorithm 1 of the ConvNN poster).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, C_out, H, W)``.
    """
    if layer.similarity != "cosine" or layer.selector.sampling != "all" or layer.selector.padding:
        raise ValueError(f"the all-pairs form covers cosine similarity over all tokens without padding, got {layer!r}")
    b, c, h, w = x.shape
    k = layer.k
    tokens = x.flatten(2)  # (b, c, n)
    unit = F.normalize(tokens, dim=1)
    scores = unit.transpose(1, 2) @ unit  # (b, n, n)
    scores = scores.diagonal_scatter(torch.full((b, h * w), 2.0, dtype=x.dtype, device=x.device), dim1=1, dim2=2)
    index = scores.topk(k, dim=-1).indices  # (b, n, k)
    neighbours = tokens.gather(2, index.flatten(1).unsqueeze(1).expand(b, c, -1))  # (b, c, n k)
    return F.conv1d(neighbours, layer.weight, layer.bias, stride=k).view(b, -1, h, w)


def convnn2d_all_pairs_bytes(batch: int, tokens: int, channels: int, k: int, itemsize: int) -> int:
    """Estimated peak of :func:`convnn2d_all_pairs`: two ``(B, N, N)`` score matrices plus the gathered tokens."""
    return itemsize * batch * (2 * tokens * tokens + 2 * tokens * channels * k)


def n3_block2d_all_pairs(block: N3Block2d, x: Tensor) -> Tensor:
    """The N3 block with dense distances and weights over all patch pairs (Ploetz & Roth 2018, Eqs. 4, 8-11).

    Patch embeddings ``(B, Np, d)``, the full ``(B, Np, Np)`` squared distances, candidates
    outside a patch's search window (and the patch itself) set to ``-inf``, the k continuous
    neighbour weights as dense ``(B, Np, Np)`` softmaxes, and the volumes as one matrix
    product with every patch ``(B, Np, C p^2)``, folded back averaging overlaps.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, (k + 1) C or out_channels, H, W)``.
    """
    sel, comb = block.selector, block.combiner
    if sel.hard or sel.distance_bn is not None or not comb.relative \
            or sel.update != "scores" or sel.patches is None:
        raise ValueError(f"the all-pairs form covers the default N3Block2d configuration, got {block!r}")
    patch, stride = sel.patches.patch_size, sel.patches.stride
    b, c, h, w = x.shape
    if (h - patch[0]) % stride[0] or (w - patch[1]) % stride[1]:
        raise ValueError(f"the all-pairs form needs patches that tile the image, got {(h, w)} for "
                         f"patch_size={patch}, stride={stride}")
    grid = ((h - patch[0]) // stride[0] + 1, (w - patch[1]) // stride[1] + 1)
    n = math.prod(grid)
    embed = F.unfold(sel.embedding(x), patch, stride=stride).transpose(1, 2)  # (b, n, d)
    sq = (embed * embed).sum(-1)
    scores = -(sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2 * embed @ embed.transpose(1, 2)).clamp_min(0)
    allowed = _window_mask(grid, sel.window, patch, stride, x.device)  # (n, n)
    t = sel.temperatures(x).unsqueeze(-1)  # (b, n, 1): the block's own temperature network
    logits = (scores / t).masked_fill(~allowed, float("-inf"))  # mask after dividing: no inf in t's gradient
    weights = []
    for j in range(sel.k):
        log_p = logits.log_softmax(-1)
        weights.append(log_p.exp())
        if j + 1 < sel.k:
            # log(1 - p) from log p, exact near p = 1 (log1p(-exp) below log 1/2, log(-expm1) above)
            low = log_p < -math.log(2)
            taken = log_p >= 0
            half = torch.full_like(log_p, -math.log(2))
            log_rest = torch.where(low, torch.log1p(-torch.exp(torch.where(low, log_p, half))),
                                   torch.log(-torch.expm1(torch.where(low | taken, half, log_p))))
            logits = (logits + log_rest.masked_fill(taken, 0.0) / t).masked_fill(taken, float("-inf"))
    dense = torch.stack(weights, dim=2)  # (b, n, k, n)
    values = F.unfold(x, patch, stride=stride).transpose(1, 2)  # (b, n, c p p)
    volumes = (dense.flatten(1, 2) @ values).view(b, n, sel.k * values.shape[-1])
    cols = volumes.transpose(1, 2)
    ones = torch.ones(1, math.prod(patch), n, dtype=x.dtype, device=x.device)
    folded = F.fold(cols, (h, w), patch, stride=stride) / F.fold(ones, (h, w), patch, stride=stride)
    folded = folded.view(b, sel.k, c, h, w) - x.unsqueeze(1)
    y = torch.cat([x, folded.flatten(1, 2)], dim=1)
    return comb.project(y) if comb.project is not None else y  # the block's own 1x1 projection


def n3_block2d_all_pairs_bytes(batch: int, patches: int, k: int, patch_features: int, itemsize: int) -> int:
    """Estimated peak of :func:`n3_block2d_all_pairs`: the ``(B, Np, Np)`` scores and k dense weight matrices."""
    return itemsize * batch * ((k + 3) * patches * patches + (k + 1) * patches * patch_features)


def _window_mask(grid: tuple[int, int], window: int | tuple[int, int] | None, patch: tuple[int, int],
                 stride: tuple[int, int], device: torch.device) -> Tensor:
    """``(Np, Np)`` bool: True where patch m lies in patch q's search window (shifted inward at the border), m != q."""
    if window is None:
        allowed = torch.ones(math.prod(grid), math.prod(grid), dtype=torch.bool, device=device)
    else:
        window = (window, window) if isinstance(window, int) else tuple(window)
        per_axis = []
        for n, wpx, p, s in zip(grid, window, patch, stride):
            size = min(n, (wpx - p) // s + 1)  # a window wider than the image covers it
            i = torch.arange(n, device=device)
            start = (i - size // 2).clamp(0, n - size)
            per_axis.append((i.unsqueeze(0) >= start.unsqueeze(1)) & (i.unsqueeze(0) < (start + size).unsqueeze(1)))
        allowed = (per_axis[0][:, None, :, None] & per_axis[1][None, :, None, :]).reshape(math.prod(grid), -1)
    return allowed & ~torch.eye(allowed.shape[0], dtype=torch.bool, device=device)
