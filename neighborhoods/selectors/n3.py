"""The N3 selector: k continuous nearest neighbours among the items in a search window.

Axis legend: ``b`` batch, ``q`` query items, ``m`` candidates per query, ``k`` neighbours,
``d`` embedding features of an item.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from ..checks import check_bool, check_choice, check_float, check_int, check_int_tuple, check_tensor
from .._reset import reset_submodules
from ..functional.candidates import candidate_sq_distances
from ..functional.continuous_knn import UPDATES, continuous_knn
from ..footprint import PixelFootprint, TokenGrid
from ..functional.knn import top_k_stable
from ..functional.patches import Patches, window_candidates
from ..functional.stages import stage
from ..functional.transforms import under_transform
from ..neighborhood import Neighborhood
from ..tokens import to_tokens
from .base import Selector
from .shared_stem import run_both, shareable


@functools.lru_cache(maxsize=256)
def _window_candidates(grid: tuple[int, ...], window: tuple[int, ...] | None, exclude_self: bool,
                       device: torch.device) -> Tensor:
    """:func:`window_candidates`, built once per size (eager mode): ~60 small ops per forward on tiny maps.

    The cached index is shared by every N3 selector and only ever read.
    """
    return window_candidates(grid, window, exclude_self=exclude_self, device=device)


def cross_sq_distances(queries: Tensor, keys: Tensor, index: Tensor, block_size: int | None = None) -> Tensor:
    """``|q_i - k_{index[i, m]}|^2``: query items against candidate items of another set, at the candidates only.

    The blocked, memory-bounded :func:`candidate_sq_distances` of one set, run on the two sets
    stacked, ``[queries; keys]`` (2N items): query ``i``'s candidates are the stacked rows
    ``N + index[i]``; the key rows list themselves (distance 0) and are dropped.

    Shape:
        queries, keys: ``(B, N, d)``; index: ``(N, M)`` into the keys -> ``(B, N, M)``.
    """
    n = queries.shape[1]
    own = torch.arange(n, 2 * n, device=index.device).unsqueeze(1).expand(-1, index.shape[1])
    stacked = torch.cat([index + n, own])  # (2n, m)
    return candidate_sq_distances(torch.cat([queries, keys], 1), stacked, block_size)[:, :n]


class N3(Selector):
    """Continuous k-NN over a search window (Ploetz & Roth 2018, Sec. 4 and Eqs. 8-10).

    Items are the input's tokens (set data, ``(B, C, N)``) or, with ``patch_size``, the
    ``patch_size`` x ``patch_size`` patches of an image taken every ``stride`` pixels. For
    each query item:

    1. the embedding ``E = embedding(x)`` of every item (im2col of ``E`` for patches);
    2. candidates: the items of a ``window`` around the query (in pixels for patches, a
       block of ``(window - patch_size) / stride + 1`` patch positions per axis, shifted
       inward at the border; in items otherwise), or all items (``window=None``), minus the
       query itself. On an axis where the input has fewer items than the window, the
       window is the whole axis (so the paper's 80-pixel window works on a 32x32 image);
       with ``exclude_self`` (default) the query itself is not a candidate (the paper and the
       authors' denoising block), without it the query is one of them;
    3. scores ``-|E_q - E_m|^2`` (negative squared euclidean, Eq. 4), optionally
       batch-normalised (``distance_bn``);
    4. temperature ``t = exp(log_t) * temp_bias``, where ``log_t`` is ``temperature(x)``
       averaged over the item's patch (one per query) or a learned scalar;
    5. weights ``continuous_knn(scores, k, t)`` ``(B, Nq, M, k)``: the k soft neighbour
       volumes' weights. With ``hard=True`` (the paper's KNN baseline) the k best candidates
       instead, ties to the lower index, as a hard neighbourhood.

    Cross matching (the authors' ``N3Aggregation2D(x, xe, ye, y)``: a database image and a
    query image): ``forward(x, database=d)`` takes the query items from ``x`` and the
    candidates from ``d`` (same shape; the embedding is applied to both, the temperature is
    read from ``x``). Candidate ``m`` of query ``q`` is then the database item at the
    position window candidate ``m`` of the query's position; ``exclude_self`` excludes the
    database item at the query's own position, as the authors' index does. With
    ``database=x`` and ``exclude_self=False`` this is self-matching with the query kept.

    Args:
        k: neighbour volumes.
        embedding: channels-first module giving ``E`` (same spatial shape); ``None`` matches
            the input itself (a fixed feature space).
        temperature: channels-first module giving ``log_t`` ``(B, 1, *spatial)``; ``None``
            learns one scalar ``log_temperature`` (initialised to 0). Unused with ``hard``.
        temp_bias: the constant factor of ``t``.
        patch_size, stride: patch items (2-D input); ``None`` makes every token an item. An
            image the patches do not tile is zero-padded and cropped back, see
            :class:`~neighborhoods.functional.Patches`.
        window: search window (int or per-axis tuple); ``None`` searches all items.
        distance_bn: batch-normalise the scores (a ``BatchNorm1d(1)`` over all of them).
        hard: select the hard k nearest candidates instead (no temperature).
        update: the weight recursion, see :func:`~neighborhoods.functional.continuous_knn`.
        block_size: query items whose distances are computed at a time (against the items
            their candidates span), so that no ``Nq x Nq`` distance matrix is held, in the
            forward or the backward pass; the result does not depend on it.
        exclude_self: leave the query item out of its candidates (default, the paper's N3
            block); ``False`` keeps it (the authors' ``index_neighbours(..., exclude_self=False)``).

    Shape:
        x: ``(B, C, N)`` or ``(B, C, H, W)`` -> Neighborhood over ``Nq`` items with static
        ``index`` ``(Nq, M)`` and ``weight`` ``(B, Nq, M, k)`` (``hard``: ``index``
        ``(B, Nq, k)``, no weight); ``query_shape`` is the item grid.
    """

    def __init__(self, k: int, embedding: nn.Module | None = None, temperature: nn.Module | None = None,
                 temp_bias: float = 1.0, patch_size: int | tuple[int, int] | None = None,
                 stride: int | tuple[int, int] | None = None, window: int | tuple[int, ...] | None = None,
                 distance_bn: bool = False, hard: bool = False, update: str = "scores", block_size: int = 1024,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 exclude_self: bool = True) -> None:
        super().__init__()
        self.exclude_self = check_bool("exclude_self", exclude_self)
        self.k = check_int("k", k, minimum=1)
        self.block_size = check_int("block_size", block_size, minimum=1)
        self.embedding = embedding
        self.hard = bool(hard)
        self.temp_bias = check_float("temp_bias", temp_bias, low=0.0, low_open=True)
        self.update = check_choice("update", update, UPDATES)
        if patch_size is None and stride is not None:
            raise ValueError(f"stride={stride!r} needs a patch_size; got patch_size=None")
        self.patches = None if patch_size is None else Patches.of(patch_size, patch_size if stride is None else stride)
        self.window = window
        if window is not None and self.patches is not None:
            self._window_items(check_int_tuple("window", window, 2, minimum=1))  # validates now
        elif window is not None:
            check_int("window", window, minimum=1)
        self.temperature = None if self.hard else temperature
        factory = {"device": device, "dtype": dtype}
        self.log_temperature = (nn.Parameter(torch.zeros((), **factory))
                                if temperature is None and not self.hard else None)
        self.distance_bn = nn.BatchNorm1d(1, **factory) if distance_bn else None

    def reset_parameters(self) -> None:
        reset_submodules(self)  # the embedding and temperature networks
        if self.log_temperature is not None:
            nn.init.zeros_(self.log_temperature)

    def _window_items(self, window: tuple[int, int]) -> tuple[int, int]:
        """A pixel window as a block of patch positions."""
        out = []
        for w, p, s in zip(window, self.patches.patch_size, self.patches.stride):
            if w < p:
                raise ValueError(f"window must be >= patch_size, got window={self.window}, "
                                 f"patch_size={self.patches.patch_size}")
            if (w - p) % s:
                raise ValueError(f"window - patch_size must be a multiple of stride, got window={self.window}, "
                                 f"patch_size={self.patches.patch_size}, stride={self.patches.stride}")
            out.append((w - p) // s + 1)
        return out[0], out[1]

    def items(self, t: Tensor) -> Tensor:
        """Per-item feature vectors of a channels-first map: ``(B, Nq, d)``."""
        return self.patches.unfold(t) if self.patches is not None else to_tokens(t)

    def candidates(self, spatial: tuple[int, ...], device: torch.device) -> tuple[Tensor, tuple[int, ...]]:
        """The static candidate index ``(Nq, M)`` and the item grid for an input's spatial shape."""
        if self.patches is not None:
            grid = self.patches.grid(spatial)
            window = None if self.window is None else self._window_items(check_int_tuple("window", self.window, 2))
        else:
            grid = spatial
            window = None if self.window is None else check_int_tuple("window", self.window, len(spatial))
        if window is not None:  # a window wider than the (padded) input covers all of it on that axis
            window = tuple(min(w, n) for w, n in zip(window, grid))
        if under_transform():  # traced: built from the (possibly symbolic) sizes
            return window_candidates(grid, window, exclude_self=self.exclude_self, device=device), grid
        return _window_candidates(tuple(grid), window, self.exclude_self, device), grid

    def check_database(self, x: Tensor, database: Tensor | None) -> None:
        """A cross-matching ``database`` has the query input's shape, dtype and device."""
        if database is None:
            return
        check_tensor("database", database, ndim=x.ndim)
        if database.shape != x.shape or database.dtype != x.dtype or database.device != x.device:
            raise ValueError(f"database must match x (shape, dtype, device): its items are candidates at the "
                             f"queries' positions, got database {tuple(database.shape)} {database.dtype} "
                             f"{database.device} for x {tuple(x.shape)} {x.dtype} {x.device}")

    def scores(self, x: Tensor, database: Tensor | None = None, *, embedded: Tensor | None = None
               ) -> tuple[Tensor, Tensor, tuple[int, ...]]:
        """``-|E_q - E_m|^2`` over each query's candidates ``(B, Nq, M)``, the index, the item grid.

        Queries and candidates are items of ``x``, or, with ``database``, queries of ``x`` and
        candidates of ``database`` (cross matching). ``embedded``: the embedding network's output
        on ``x`` when the caller already has it.
        """
        self.check_input(x, (1, 2) if self.patches is None else 2)
        self.check_database(x, database)
        index, grid = self.candidates(tuple(x.shape[2:]), x.device)
        if index.shape[1] < self.k:
            raise ValueError(f"k must be <= the number of candidates, got k={self.k}, candidates={index.shape[1]} "
                             f"(window={self.window} on an item grid of {tuple(grid)})")
        if embedded is None:
            embedded = self.embedding(x) if self.embedding is not None else x
        e = self.items(embedded)
        if database is None:
            # per block of queries against the keys its candidates span; autograd keeps e, not the blocks
            s = -candidate_sq_distances(e, index, self.block_size)  # (b, q, m)
        else:
            keys = self.items(self.embedding(database) if self.embedding is not None else database)
            s = -cross_sq_distances(e, keys, index, self.block_size)
        if self.distance_bn is not None:
            with stage("similarity"):  # the scores batch-normalised (step 3)
                s = self.distance_bn(s.reshape(s.shape[0], 1, -1)).view_as(s)
        return s, index, grid

    def temperatures(self, x: Tensor, *, log_t: Tensor | None = None) -> Tensor:
        """``t = exp(log_t) * temp_bias``: per query item ``(B, Nq)``, or a 0-d tensor.

        ``log_t``: the temperature network's output on ``x`` when the caller already has it.
        """
        if self.temperature is None:
            return self.log_temperature.exp() * self.temp_bias
        if log_t is None:
            log_t = self.temperature(x)
        if log_t.shape[0] != x.shape[0] or log_t.shape[1] != 1 or log_t.shape[2:] != x.shape[2:]:
            raise ValueError(f"the temperature module must map x {tuple(x.shape)} to (B, 1, *spatial), "
                             f"got {tuple(log_t.shape)}")
        return self.items(log_t).mean(-1).exp() * self.temp_bias

    def footprint(self, spatial: tuple[int, ...]) -> PixelFootprint:
        """Items on the input's pixels: patches (keys and queries alike), or the tokens themselves."""
        if self.patches is None:
            return PixelFootprint.pixels(spatial)
        # an image the patches do not tile is zero-padded: the patch grid starts before pixel 0
        offset = tuple(-before for before, _ in self.patches.pads(spatial))
        patches = TokenGrid(self.patches.grid(spatial), self.patches.patch_size, self.patches.stride, offset, (1, 1))
        return PixelFootprint(spatial, patches, patches)

    def forward(self, x: Tensor, database: Tensor | None = None) -> Neighborhood:
        embedded = log_t = None
        if database is None and shareable(self.embedding, self.temperature):
            # both networks read x through the same convolution shape: run their first layers as one
            self.check_input(x, (1, 2) if self.patches is None else 2)
            embedded, log_t = run_both(self.embedding, self.temperature, x)
        s, index, grid = self.scores(x, database, embedded=embedded)
        footprint = self.footprint(tuple(x.shape[2:]))
        if self.hard:
            with stage("selection"):  # the k best candidates
                _, pos = top_k_stable(s, self.k)
                chosen = index.expand(x.shape[0], -1, -1).gather(-1, pos)
            return Neighborhood(num_keys=index.shape[0], query_shape=grid, index=chosen, footprint=footprint)
        weight = continuous_knn(s, self.k, self.temperatures(x, log_t=log_t), update=self.update)
        return Neighborhood(num_keys=index.shape[0], query_shape=grid, index=index, weight=weight,
                            footprint=footprint)

    @property
    def selection(self) -> str:  # type: ignore[override]
        return "hard content" if self.hard else "soft content"

    @property
    def locality(self) -> str:  # type: ignore[override]
        return "global" if self.window is None else "local"

    def cost(self, fast: bool) -> str:
        return "O(N^2)" if self.window is None else "O(N w)"  # w candidates in the window

    def extra_repr(self) -> str:
        s = f"k={self.k}"
        if self.patches is not None:
            s += f", patch_size={self.patches.patch_size}, stride={self.patches.stride}"
        s += f", window={self.window}"
        if not self.exclude_self:
            s += ", exclude_self=False"
        if self.hard:
            return s + ", hard=True"
        s += f", temp_bias={self.temp_bias:g}"
        return s + (f", update={self.update!r}" if self.update != "scores" else "")

