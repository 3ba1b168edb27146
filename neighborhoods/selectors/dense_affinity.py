"""Dense selectors: every key is a candidate, weighted by a pairwise affinity.

Axis legend: ``b`` batch, ``h`` heads, ``q`` queries, ``n`` keys, ``d`` channels per head.

The non-local family differs only in the pairwise kernel ``f`` and in how the affinity
matrix ``M_ij = f(q_i, k_j)`` is normalised into ``A`` (Wang et al. 2018, Eq. 1 and Sec. 3.2;
Zhu et al. 2021, appendix): attention and the embedded-Gaussian non-local block use
``A = softmax(M)``, the dot-product block ``A = M / N``, SNL the symmetric
``D^-1/2 (M + M^T)/2 D^-1/2``.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ..checks import check_choice, check_divisible, check_float, check_int
from ..footprint import PixelFootprint, pooled_grid
from ..functional.stages import stage
from ..functional.symmetric import symmetric_normalize
from ..neighborhood import Neighborhood
from ..query_grid import QueryGrid
from ..tokens import to_tokens
from .base import Selector

#: pairwise kernels f(q, k) on the scaled dot product s = scale * <q, k>
KERNELS = ("dot", "exp", "sigmoid", "relu")
#: how M becomes A: row softmax of s (= D^-1 exp(s)), M / N_k, D^-1 M, the symmetric
#: D^-1/2 ((M + M^T) / 2) D^-1/2, or M itself
_KERNEL_FNS = {"dot": lambda s: s, "exp": torch.exp, "sigmoid": torch.sigmoid, "relu": torch.relu}
NORMALIZATIONS = ("softmax", "mean", "row", "symmetric", "none")


def check_mask(mask: Tensor | None, batch: int, heads: int, nq: int, nk: int) -> Tensor | None:
    """An attention mask of one of the documented shapes, as a 4-D tensor.

    ``mask`` is bool (``True`` = may attend, the convention of
    ``F.scaled_dot_product_attention``) or floating (added to the scores), of shape
    ``(Nq, Nk)``, ``(B, Nq, Nk)`` or ``(B, H, Nq, Nk)``.
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    shapes = {2: (nq, nk), 3: (batch, nq, nk), 4: (batch, heads, nq, nk)}
    if mask.ndim not in shapes or tuple(mask.shape) != shapes[mask.ndim]:
        raise ValueError(f"mask must have shape (Nq, Nk)={shapes[2]}, (B, Nq, Nk)={shapes[3]} or "
                         f"(B, H, Nq, Nk)={shapes[4]}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be bool or floating point, got dtype {mask.dtype}")
    if mask.ndim == 2:
        return mask[None, None]
    return mask[:, None] if mask.ndim == 3 else mask


def _bool_mask(mask: Tensor | None, normalize: str) -> Tensor | None:
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"normalize={normalize!r} takes a bool mask only, got dtype {mask.dtype}")
    return mask


class DenseAffinity(Selector):
    """All keys, weighted by ``A = normalize(f(scale * <q_i, k_j>))``.

    Args:
        query, key: modules mapping the channels-first input ``(B, C, *spatial)`` to
            ``(B, D, *spatial')`` (``theta``/``phi`` in Wang et al.; a key module may also
            pool, giving fewer keys than queries); ``None`` uses the input itself.
        kernel: one of :data:`KERNELS` (ignored by ``normalize='softmax'``, which always
            exponentiates, stably).
        normalize: one of :data:`NORMALIZATIONS`.
        num_heads: heads; D must be divisible by it.
        scale: multiplier of the dot product (default 1).

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with ``weight`` ``(B, H, N, N, 1)``.
        ``mask`` (forward keyword, bool ``True`` = keep, or additive float): see :func:`check_mask`.
        With ``normalize='softmax'`` a query whose every key is masked out gets all-zero
        weights (so its ``A V`` is 0), as ``F.scaled_dot_product_attention`` returns. Likewise
        ``normalize='row'`` (``D^-1 M``) gives all-zero weights to a row whose sum is exactly 0
        (every key masked, a ReLU kernel that is 0 on the row, or ``dot`` scores that cancel):
        ``D^+ M`` with the degree matrix's pseudo-inverse. A sum merely near 0 is divided by,
        as the definition says (a signed kernel makes row normalisation ill-conditioned there).
    """

    def __init__(self, query: nn.Module | None = None, key: nn.Module | None = None, kernel: str = "dot",
                 normalize: str = "softmax", num_heads: int = 1, scale: float = 1.0,
                 queries: QueryGrid | None = None) -> None:
        super().__init__()
        self.query = query
        self.key = key
        self.kernel = check_choice("kernel", kernel, KERNELS)
        self.normalize = check_choice("normalize", normalize, NORMALIZATIONS)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        self.scale = check_float("scale", scale)
        if queries is not None and (not isinstance(queries, QueryGrid) or queries.overhang):
            raise ValueError(f"queries must be a QueryGrid inside the image (queries are input tokens), got {queries!r}")
        #: strided queries (a convolution's output grid), or None: every token is a query
        self.queries = None if queries is None or queries.is_identity else queries

    def output_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The query grid's shape (the input's own without strided queries)."""
        return tuple(spatial_shape) if self.queries is None else self.queries.shape(tuple(spatial_shape))

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Queries and keys per head, ``(B, H, N, d)`` each."""
        self.check_input(x, (1, 2, 3))
        xq = x if self.queries is None else self.queries.take(x)  # projections are per token: project the queries only
        q = to_tokens(self.query(xq) if self.query is not None else xq)
        k = to_tokens(self.key(x) if self.key is not None else x)
        check_divisible("query/key channels", q.shape[-1], "num_heads", self.num_heads)
        split = "b n (h d) -> b h n d"
        return rearrange(q, split, h=self.num_heads), rearrange(k, split, h=self.num_heads)

    def affinity(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``A`` as ``(B, H, Nq, Nk)``."""
        q, k = self.project(x)
        with stage("similarity"):  # scoring every query-key pair
            s = q @ k.transpose(-1, -2) * self.scale
        mask = check_mask(mask, x.shape[0], self.num_heads, q.shape[-2], k.shape[-2])
        with stage("selection"):  # the scores normalised into weights
            if self.normalize == "softmax":
                if mask is None:
                    return s.softmax(-1)
                s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
                # a query whose every key is masked out attends to nothing: weights 0 (so its A V is 0),
                # what F.scaled_dot_product_attention returns, not the NaN of a softmax over only -inf
                empty = torch.isneginf(s).all(-1, keepdim=True)
                return s.masked_fill(empty, 0.0).softmax(-1).masked_fill(empty, 0.0)
            if self.normalize == "symmetric":  # in log space, so no degree underflows
                return symmetric_normalize(s, self.kernel, mask=_bool_mask(mask, self.normalize))
            if self.kernel == "exp" and self.normalize == "row":
                # invariant to scaling M, so shift the exponent by its max: same A, no overflow
                s = s - s.detach().amax(-1, keepdim=True)
            m = _KERNEL_FNS[self.kernel](s)
            if mask is not None:
                m = m.masked_fill(~_bool_mask(mask, self.normalize), 0.0)
            if self.normalize == "mean":
                return m / m.shape[-1]
            if self.normalize == "row":
                # D^+ M with the pseudo-inverse of the degree matrix: a row summing to exactly 0 gets
                # zero weights (what a fully masked softmax row gets), not the 0/0 = NaN of D^-1 M
                degree = m.sum(-1, keepdim=True)
                zero = degree == 0
                return (m / torch.where(zero, torch.ones_like(degree), degree)).masked_fill(zero, 0.0)
            return m

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Neighborhood:
        weight = self.affinity(x, mask).unsqueeze(-1)
        spatial = tuple(x.shape[2:])
        keys = pooled_grid(spatial, weight.shape[-2])
        queries = pooled_grid(spatial, weight.shape[-3]) if self.queries is None else self.queries.token_grid(spatial)
        footprint = None if keys is None or queries is None else PixelFootprint(spatial, keys, queries)
        return Neighborhood(num_keys=weight.shape[-2], query_shape=self.output_shape(spatial), weight=weight,
                            num_heads=self.num_heads, footprint=footprint)

    def cost(self, fast: bool) -> str:
        # a linear kernel without a softmax factorises, A Z = Q (K^T Z): the fast path never forms A
        linear = self.kernel == "dot" and self.normalize in ("none", "mean")
        return "O(N C^2)" if fast and linear else "O(N^2)"

    def extra_repr(self) -> str:
        return (f"kernel={self.kernel!r}, normalize={self.normalize!r}, num_heads={self.num_heads}, "
                f"scale={self.scale:.4g}")
