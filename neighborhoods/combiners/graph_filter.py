"""Graph filters: the non-local family in the spectral view (Zhu et al. 2021).

Axis legend: ``b`` batch, ``h`` heads (or CGNL's channel groups), ``n`` graph nodes,
``d`` channels per head, ``k`` filter terms.

Zhu et al. read every non-local block as a graph filter on a graph over the positions:
a selector builds the affinity ``A`` (a :class:`~neighborhoods.Neighborhood` with one
slot), and the block outputs ``F(A, Z) = sum_k p_k(A) Z W_k`` with ``Z = g(X)``, for a few
polynomials ``p_k`` (appendix Theorem 1 and Eqs. 4, 8, 17, 18, 22):

=========================  ==================================  =====================
block                      polynomials ``p_k``                 weights
=========================  ==================================  =====================
NL, A^2, CGNL, criss-cross  ``A``                              one
NS                         ``A - I``                           one (W_1 = W_2 = -W)
SNL                        ``I, A`` (Chebyshev order 1)        one per term
gSNL                       ``I, A, 2A^2 - I`` (order 2)        one per term
Cayley SNL                 ``I, (I - A)^2`` then Eq. 22        see :class:`CayleyFilter`
=========================  ==================================  =====================

``A`` is applied through :meth:`Neighborhood.aggregate` (or a fast path's native twin),
so ``A^2 Z`` is just two applications. ``sum_k W_k T_k`` is one linear map on the terms
concatenated along channels (``W = [W_0 | W_1 | ...]``), which makes the filter
:class:`~neighborhoods.combiners.WeightedMean` with a wider output projection, followed by
the block's zero-initialised normalisation and the residual ``Y = X + norm(F)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from ..checks import check_choice, check_int
from ..neighborhood import Neighborhood
from ..pointwise import ChannelLinear
from ..query_grid import QueryGrid
from ..tokens import from_entries, to_entries
from .weighted_mean import WeightedMean

#: coefficients of a polynomial in A, lowest power first: (c_0, c_1, ...) = c_0 I + c_1 A + ...
Polynomial = tuple[float, ...]
#: a function applying the affinity to a graph signal: (B, [H,] Nk, d) -> (B, [H,] Nq, d)
Propagate = Callable[[Tensor], Tensor]
#: graph nodes are positions (tokens), or (channel, position) entries per channel group (CGNL)
NODES = ("positions", "entries")
PLAIN_AFFINITY: tuple[Polynomial, ...] = ((0.0, 1.0),)


def chebyshev(order: int) -> tuple[Polynomial, ...]:
    """Chebyshev polynomials ``T_0 .. T_order`` of A in the power basis.

    ``T_0 = I``, ``T_1 = A``, ``T_{k+1} = 2 A T_k - T_{k-1}`` (so ``T_2 = 2A^2 - I``).
    """
    order = check_int("order", order, minimum=1)
    basis: list[Polynomial] = [(1.0,), (0.0, 1.0)]
    while len(basis) <= order:
        nxt = [0.0] + [2.0 * c for c in basis[-1]]
        for i, c in enumerate(basis[-2]):
            nxt[i] -= c
        basis.append(tuple(nxt))
    return tuple(basis[: order + 1])


def check_polynomials(polynomials: Sequence[Sequence[float]]) -> tuple[Polynomial, ...]:
    """A non-empty sequence of non-zero coefficient sequences, as tuples of floats."""
    if isinstance(polynomials, (str, bytes)) or not isinstance(polynomials, Sequence) or not polynomials:
        raise TypeError(f"polynomials must be a non-empty sequence of coefficient sequences, got {polynomials!r}")
    out = []
    for i, p in enumerate(polynomials):
        if (not isinstance(p, Sequence) or isinstance(p, (str, bytes)) or not p
                or not all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in p)):
            raise TypeError(f"polynomials[{i}] must be a non-empty sequence of real coefficients, got {p!r}")
        if not any(c != 0 for c in p):
            raise ValueError(f"polynomials[{i}] must have a non-zero coefficient, got {tuple(p)!r}")
        out.append(tuple(float(c) for c in p))
    return tuple(out)


class GraphFilter(WeightedMean):
    """``Y = [X +] norm(sum_k p_k(A) Z W_k)``, ``Z = g(X)``: a polynomial graph filter.

    Zhu et al. 2021, appendix Theorem 1 with the Chebyshev approximation (Eqs. 4, 8); see
    the module docstring for which polynomials give which block. The weights ``W_k`` are
    the column blocks of one projection ``output`` over the concatenated terms.

    Args:
        in_channels: C of the input.
        filter_channels: channels of ``Z`` (default ``in_channels``).
        out_channels: channels of the output (default ``in_channels``).
        polynomials: coefficient tuples ``(c_0, c_1, ...)`` of ``p_k(A) = sum_j c_j A^j``,
            e.g. :func:`chebyshev`; default ``((0, 1),)`` = ``A`` alone.
        value: ``g`` (``True``: a :class:`ChannelLinear`; ``False``: identity; or a
            channels-first module).
        output: ``W = [W_0 | W_1 | ...]`` mapping ``K * filter_channels`` to
            ``out_channels`` (``True``: a :class:`ChannelLinear`; ``False``: identity, one
            term only; or a channels-first module, e.g. a grouped 1x1 conv).
        norm: module applied after ``W`` (the block's output normalisation), or ``None``.
        residual: add the input, ``Y = X + norm(F)``, and start as the identity: the last
            affine map (``norm``, else the last module of ``W``) has all its parameters set
            to 0 at construction and by :meth:`reset_parameters` (Wang et al. 2018, Sec.
            4.1). With ``out_channels != in_channels`` the input passes through a learned
            1x1 projection first, ``Y = P X + norm(F)`` (``shortcut``, no bias; He et al.
            2016's projection shortcut), so a fresh block is ``P X``.
        nodes: ``'positions'`` (one node per token) or ``'entries'`` (one node per
            (channel, position) entry of each channel group, CGNL; the neighbourhood's
            heads are the groups).
        bias: whether learned projections carry a bias.

    Shape:
        x: ``(B, C, *spatial)``, a one-slot neighbourhood ``Nq x Nk`` (square unless the
        only polynomial is ``c A``) -> ``(B, out_channels, *spatial)``.
    """

    def __init__(self, in_channels: int, filter_channels: int | None = None, out_channels: int | None = None,
                 polynomials: Sequence[Sequence[float]] = PLAIN_AFFINITY, value: bool | nn.Module = True,
                 output: bool | nn.Module = True, norm: nn.Module | None = None, residual: bool = False,
                 nodes: str = "positions", bias: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        in_channels = check_int("in_channels", in_channels, minimum=1)
        filter_channels = check_int("filter_channels", in_channels if filter_channels is None else filter_channels,
                                    minimum=1)
        out_channels = check_int("out_channels", in_channels if out_channels is None else out_channels, minimum=1)
        polynomials = check_polynomials(polynomials)
        if output is False and len(polynomials) != 1:
            raise ValueError(f"output=False (identity W) needs a single polynomial, got {len(polynomials)}")
        if output is True:
            output = ChannelLinear(len(polynomials) * filter_channels, out_channels, bias=bias, device=device,
                                   dtype=dtype)
        super().__init__(in_channels, filter_channels, out_channels, value=value, output=output, bias=bias,
                         device=device, dtype=dtype)
        if norm is not None and not isinstance(norm, nn.Module):
            raise TypeError(f"norm must be an nn.Module or None, got {type(norm).__name__}")
        self.polynomials = polynomials
        self.norm = norm
        self.residual = bool(residual)
        self.nodes = check_choice("nodes", nodes, NODES)
        self.shortcut = (ChannelLinear(in_channels, out_channels, bias=False, device=device, dtype=dtype)
                         if self.residual and out_channels != in_channels else None)
        self.start_as_identity()

    def start_as_identity(self) -> None:
        """Zero the last affine map of a residual filter, so that ``Y = X`` (or ``P X``) at first."""
        last = self.norm if self.norm is not None else self.output
        if isinstance(last, nn.Sequential):
            last = last[-1]
        if self.residual and last is not None:
            with torch.no_grad():
                for p in last.parameters():
                    p.zero_()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.start_as_identity()

    @property
    def needs_square(self) -> bool:
        """Whether some term needs ``Nq == Nk`` (an identity term or a power of A above 1)."""
        return any(len(p) != 2 or p[0] != 0 for p in self.polynomials)

    # ---- the filter ------------------------------------------------------------------------
    def signal(self, x: Tensor, num_heads: int | None) -> Tensor:
        """``Z = g(X)`` as a graph signal: ``(B, [H,] N, d)`` per position, ``(B, G, cN, 1)`` per entry."""
        if self.nodes == "positions":
            return self.values(x, num_heads)
        return to_entries(self.values(x, None), num_heads or 1)

    def terms(self, z: Tensor, propagate: Propagate) -> list[Tensor]:
        """``p_k(A) Z`` for every polynomial, from the powers ``Z, AZ, A^2 Z, ...``."""
        powers = [z]
        for _ in range(max(len(p) for p in self.polynomials) - 1):
            powers.append(propagate(powers[-1]))
        return [sum(c * powers[j] for j, c in enumerate(p) if c != 0) for p in self.polynomials]

    def merge(self, term: Tensor, num_positions: int) -> Tensor:
        """A term back to a token matrix ``(B, N, C_z)``."""
        if self.nodes == "entries":
            return from_entries(term, num_positions)
        return rearrange(term, "b h n d -> b n (h d)") if term.ndim == 4 else term

    def filter(self, x: Tensor, propagate: Propagate, num_heads: int | None, affinity_shape: tuple[int, int],
               query_shape: tuple[int, ...], queries: QueryGrid | None = None) -> Tensor:
        """The block's output given how to apply A (the reference path or a native twin).

        ``affinity_shape`` is ``(Nq, Nk)``; ``query_shape`` the output's spatial shape;
        ``queries`` the strided query grid, if any (where the residual takes ``x``).
        """
        nq, nk = affinity_shape
        if self.needs_square and nq != nk:
            raise ValueError(f"the graph filter's polynomials {self.polynomials} need a square affinity "
                             f"(Nq == Nk), got Nq={nq}, Nk={nk}")
        z = self.signal(x, num_heads)
        y = torch.cat([self.merge(t, math.prod(query_shape)) for t in self.terms(z, propagate)], -1)
        y = self.finish(y, tuple(query_shape))
        if self.norm is not None:
            y = self.norm(y)
        if not self.residual:
            return y
        if queries is not None:  # strided queries: the residual is the input at the query positions
            x = queries.take(x)
        return y + (self.shortcut(x) if self.shortcut is not None else x)

    def forward(self, x: Tensor, nbhd: Neighborhood) -> Tensor:
        if nbhd.num_slots != 1:
            raise ValueError(f"a graph filter needs an affinity matrix (one slot per query), got a neighbourhood "
                             f"with S={nbhd.num_slots} slots")
        shape = tuple(x.shape[2:]) if self.nodes == "entries" else nbhd.query_shape
        queries = None
        if self.nodes == "positions" and tuple(shape) != tuple(x.shape[2:]):  # strided queries (a QueryGrid)
            grid = nbhd.footprint.queries
            queries = QueryGrid(grid.stride, grid.offset)
        return self.filter(x, lambda z: nbhd.aggregate(z).squeeze(-2), nbhd.num_heads,
                           (nbhd.num_queries, nbhd.num_keys), shape, queries)

    def extra_repr(self) -> str:
        s = f"{super().extra_repr()}, polynomials={self.polynomials}"
        if self.nodes != "positions":
            s += f", nodes={self.nodes!r}"
        return s + (", residual=True" if self.residual else "")


class CayleyFilter(GraphFilter):
    """First-order Cayley filter: ``F = Z W_1 + 2 (L^2 Z W_h + Z) W_2`` (Zhu et al. 2021, appendix Eq. 22).

    ``L = I - A`` is the Laplacian of the (normalised) affinity and ``W_h`` (``zoom``, a
    ``filter_channels x filter_channels`` matrix) absorbs the spectral zoom ``h^2`` of the
    Cayley polynomial (Levie et al. 2018). With ``residual=True`` this is the Cayley SNL
    block, Eq. 23. Terms: ``[Z, 2 (L^2 Z W_h + Z)]``, so ``output`` holds ``[W_1 | W_2]``.

    Args: as :class:`GraphFilter` without ``polynomials`` and ``nodes``.

    Shape:
        x: ``(B, C, *spatial)``, a square single-head affinity -> ``(B, out_channels, *spatial)``.
    """

    #: Z and L^2 Z = (I - A)^2 Z = Z - 2 A Z + A^2 Z
    LAPLACIAN_SQUARED: tuple[Polynomial, ...] = ((1.0,), (1.0, -2.0, 1.0))

    def __init__(self, in_channels: int, filter_channels: int | None = None, out_channels: int | None = None,
                 value: bool | nn.Module = True, output: bool | nn.Module = True, norm: nn.Module | None = None,
                 residual: bool = False, bias: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(in_channels, filter_channels, out_channels, self.LAPLACIAN_SQUARED, value, output, norm,
                         residual, "positions", bias, device, dtype)
        self.zoom = nn.Linear(self.value_channels, self.value_channels, bias=False, device=device, dtype=dtype)

    def terms(self, z: Tensor, propagate: Propagate) -> list[Tensor]:
        if z.shape[-1] != self.value_channels:
            raise ValueError(f"the Cayley filter's zoom W_h acts on all {self.value_channels} channels of Z: it needs "
                             f"a single-head affinity, got Z per head of shape {tuple(z.shape)}")
        identity, laplacian_squared = super().terms(z, propagate)
        return [identity, 2 * (self.zoom(laplacian_squared) + identity)]

