"""CGNL's selector: an affinity between every pair of (channel, position) entries."""

from __future__ import annotations

from typing import Literal, get_args

from einops import rearrange
from torch import Tensor, nn

from ..checks import check_choice, check_divisible, check_float, check_int
from ..functional.taylor import ENTRY_KERNELS, entry_kernel
from ..footprint import PixelFootprint, TokenGrid
from ..neighborhood import Neighborhood
from .base import Selector

#: how M^f becomes A^f: itself, M / N_k (N_k = entries per group), or D^-1 M
EntryNormalization = Literal["none", "mean", "row"]
ENTRY_NORMALIZATIONS: tuple[str, ...] = get_args(EntryNormalization)


class CompactAffinity(Selector):
    """``A^f = normalize(f(vec theta(X), vec phi(X)))`` per channel group (Yue et al. 2018, Eqs. 3-4).

    The compact generalized non-local block makes every (channel, position) entry a graph
    node: within each of ``groups`` channel groups of ``c`` channels, ``N c`` nodes and an
    ``Nc x Nc`` affinity (Zhu et al. 2021, appendix Eq. 16). This selector returns that
    matrix explicitly (the reference path); the aggregator's fast path uses the separable
    form of :mod:`~neighborhoods.functional.taylor` instead and never builds it.

    Args:
        query, key: channels-first modules ``(B, C, *spatial) -> (B, D, *spatial)``
            (``theta``, ``phi``); ``None`` uses the input itself.
        groups: channel groups; D must be divisible by it.
        kernel: ``'dot'`` (``a b``) or ``'gaussian'`` (Taylor-truncated, see
            :func:`~neighborhoods.functional.taylor.entry_kernel`).
        order: Taylor order of the Gaussian kernel (>= 1; ignored by ``'dot'``).
        gamma: Gaussian bandwidth, ``exp(-gamma (a - b)^2)``.
        normalize: one of :data:`ENTRY_NORMALIZATIONS`.

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with ``weight`` ``(B, G, cN, cN, 1)``,
        ``num_heads = G`` and ``query_shape = (c, *spatial)``.
    """

    def __init__(self, query: nn.Module | None = None, key: nn.Module | None = None, groups: int = 1,
                 kernel: str = "dot", order: int = 3, gamma: float = 0.5, normalize: str = "none") -> None:
        super().__init__()
        self.query = query
        self.key = key
        self.groups = check_int("groups", groups, minimum=1)
        self.kernel = check_choice("kernel", kernel, ENTRY_KERNELS)
        self.order = check_int("order", order, minimum=1)
        self.gamma = check_float("gamma", gamma, low=0.0, low_open=True)
        self.normalize = check_choice("normalize", normalize, ENTRY_NORMALIZATIONS)

    def entries(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``vec`` of each group's queries and keys, ``(B, G, c*N)`` each (channel-major)."""
        self.check_input(x, (1, 2, 3))
        q = self.query(x) if self.query is not None else x
        k = self.key(x) if self.key is not None else x
        check_divisible("query/key channels", q.shape[1], "groups", self.groups)
        split = "b (g c) ... -> b g (c ...)"
        return rearrange(q, split, g=self.groups), rearrange(k, split, g=self.groups)

    def affinity(self, x: Tensor) -> Tensor:
        """``A^f`` as ``(B, G, cN, cN)``."""
        a, b = self.entries(x)
        m = entry_kernel(a, b, self.kernel, self.order, self.gamma)
        if self.normalize == "mean":
            return m / m.shape[-1]
        if self.normalize == "row":
            return m / m.sum(-1, keepdim=True)
        return m

    def forward(self, x: Tensor) -> Neighborhood:
        weight = self.affinity(x).unsqueeze(-1)
        spatial = tuple(x.shape[2:])
        c, c_key = (n // x.shape[2:].numel() for n in weight.shape[-3:-1])
        # nodes are (channel, position) entries: each sits on its position's pixel
        footprint = PixelFootprint(spatial, TokenGrid.pixels(spatial, copies=c_key),
                                   TokenGrid.pixels(spatial, copies=c))
        return Neighborhood(num_keys=weight.shape[-2], query_shape=(c, *spatial), weight=weight,
                            num_heads=self.groups, footprint=footprint)

    def cost(self, fast: bool) -> str:
        # the fast path's separable (Taylor) features never form the (N C)^2 entry affinity
        return "O(N C^2)" if fast else "O((N C)^2)"

    def extra_repr(self) -> str:
        s = f"groups={self.groups}, kernel={self.kernel!r}"
        if self.kernel == "gaussian":
            s += f", order={self.order}, gamma={self.gamma:.4g}"
        return s + f", normalize={self.normalize!r}"
