"""ConvNN's selector: the k nearest tokens of every token, by features, positions or both.

Axis legend: ``b`` batch, ``q`` queries (the input's own N tokens), ``n`` keys (the Np tokens
of the grid zero-padded by ``padding``), ``m`` candidates (keys a query may pick), ``k`` slots,
``d`` descriptor channels.

This is steps 1-2 of Algorithm 1 of the ConvNN poster (Kang & Farias): score every pair of
tokens, keep the k best per query. Selection is discrete, so it runs under ``torch.no_grad``;
gradients reach the input through the gathered features (the combiner's
:meth:`Neighborhood.aggregate`), exactly as in the poster, where the top-k indices carry none.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from ..checks import check_choice, check_float, check_int
from ..footprint import PixelFootprint, TokenGrid
from ..functional.knn import knn
from ..functional.positions import grid_coordinates, image_in_padded_index, padded_to_image_index
from ..functional.similarity import METRICS
from ..neighborhood import Neighborhood
from ..query_grid import QueryGrid
from ..tokens import to_tokens
from .base import Selector

SPACES = ("features", "positions", "hybrid")
Sampling = Literal["all", "random", "spatial"]
SampleFrom = Literal["image", "padded"]
SAMPLINGS: tuple[str, ...] = get_args(Sampling)
SAMPLE_FROM: tuple[str, ...] = get_args(SampleFrom)
ORDERS = ("score", "index")


class HardKNN(Selector):
    """Hard k-nearest-neighbour selection: S = k one-hot slots per token.

    Queries are the input's own tokens; keys are the tokens of the grid zero-padded by
    ``padding`` (zero features, coordinates beyond the image), so a padding token can be
    chosen and then reads as zero (the Neighborhood marks it invalid).

    Descriptors a token is compared by (``space``):

    * ``features``: its channel vector (the poster's ``S = X X^T`` for ``cosine``);
    * ``positions``: its grid coordinates (:func:`grid_coordinates`: the image's longest
      axis spans [-1, 1], same spacing on every axis), computed in units of half a grid step
      (a positive rescaling, so every metric ranks alike) to keep them exact integers:
      equidistant tokens then tie exactly and go to the lower index, the same way for every
      query. With ``chebyshev`` the k = (2r+1)^d nearest tokens over a d-axis grid padded
      by r are exactly a (2r+1)-wide window (a square in 2-D, a cube in 3-D);
    * ``hybrid``: ``concat(lambda * standardised features, (1 - lambda) * coordinates)``;
      features are standardised per sample and channel over the image's tokens (zero mean,
      unit variance); a padding token's feature part is 0.

    ``metric`` ranks them: ``cosine``/``dot`` largest first, ``euclidean`` (squared) /
    ``chebyshev`` smallest first; ties go to the lower key index (raster order of the
    padded grid).

    Candidates (``sampling``, the poster's speed-ups): ``all`` keys; ``random``: ``samples``
    tokens, in training mode drawn afresh on every forward (one set shared by the batch) from
    the module's own ``torch.Generator`` seeded by ``seed`` (global RNG when ``seed`` is
    None), in eval mode one fixed draw per input shape (deterministic inference); ``spatial``:
    a ``samples``-per-axis evenly spaced sub-grid (``samples x samples`` in 2-D). Both sample
    the image's tokens by default; ``sample_from='padded'`` samples the padded grid instead,
    padding tokens included (on a 7x7 image padded by 1, a 3x3 spatial sample of the padded
    grid is 8 padding tokens and the centre).

    Queries (``queries``): every token of the image (default), or a strided
    :class:`~neighborhoods.query_grid.QueryGrid` (a convolution's output grid): then only the
    tokens on that grid are queries, each still choosing among all candidates, and the
    output has the grid's shape. Queries outside the image (a negative offset) are padding
    tokens, so ``padding`` must reach them.

    Slots: with ``self_first`` the query itself is always selected, in slot 0, and the other
    k-1 slots hold its k-1 nearest *other* candidates, best first (the ConvNN convention).
    ``order='index'`` then re-sorts the k slots by key index, i.e. the raster order of a
    conv kernel (the query lands at the kernel's centre, no longer in slot 0).

    Args:
        k: slots per query; ``1 <= k <=`` number of candidates.
        space: ``'features'`` | ``'positions'`` | ``'hybrid'``.
        metric: one of ``cosine``, ``dot``, ``euclidean``, ``chebyshev``.
        ndim: spatial axes of the input: 1 (``(B, C, N)``), 2 (``(B, C, H, W)``), 3
            (``(B, C, T, H, W)``), any number (tokens are the grid's cells in raster order).
        padding: zero tokens added around the grid on every side as candidates.
        sampling: ``'all'`` | ``'random'`` | ``'spatial'``.
        samples: candidates drawn (random) or per axis (spatial); required by those two.
        sample_from: ``'image'`` (default) or ``'padded'``: the grid random / spatial sampling
            draws from.
        hybrid_lambda: the feature weight lambda in ``[0, 1]`` of ``hybrid``.
        self_first: reserve slot 0 for the query itself.
        order: ``'score'`` (best first) or ``'index'`` (raster order of the padded grid).
        block_size: queries scored at a time by :func:`knn`; ``None`` (default) lets
            :func:`~neighborhoods.functional.knn.auto_block_size` pick the most that fit
            ``min(16 MiB, free memory / 8)``. The result does not depend on it.
        seed: seed of the random-sampling generator.
        queries: the query grid (default: every token; see above).

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with ``index`` ``(B, Nq, k)`` into the N image
        tokens and ``valid`` ``(B, Nq, k)`` (``False`` on padding tokens), or ``valid=None``;
        Nq = N, or the query grid's size.
    """

    def __init__(self, k: int, space: str = "features", metric: str = "cosine", ndim: int = 2, padding: int = 0,
                 sampling: str = "all", samples: int | None = None, hybrid_lambda: float = 0.5,
                 self_first: bool = True, order: str = "score", block_size: int | None = None,
                 seed: int | None = None, sample_from: str = "image", queries: QueryGrid | None = None) -> None:
        super().__init__()
        self.k = check_int("k", k, minimum=1)
        self.space = check_choice("space", space, SPACES)
        self.metric = check_choice("metric", metric, METRICS)
        self.ndim = check_int("ndim", ndim, minimum=1)
        self.padding = check_int("padding", padding, minimum=0)
        self.sampling = check_choice("sampling", sampling, SAMPLINGS)
        self.hybrid_lambda = check_float("hybrid_lambda", hybrid_lambda, low=0.0, high=1.0)
        if not isinstance(self_first, bool):
            raise TypeError(f"self_first must be a bool, got {self_first!r} of type {type(self_first).__name__}")
        self.self_first = self_first
        self.order = check_choice("order", order, ORDERS)
        self.block_size = None if block_size is None else check_int("block_size", block_size, minimum=1)
        self.samples = self._check_samples(samples)
        self.sample_from = check_choice("sample_from", sample_from, SAMPLE_FROM)
        self.seed = None if seed is None else check_int("seed", seed)
        self.generator = None if seed is None else torch.Generator().manual_seed(self.seed)
        self._last_draw: tuple[tuple[int, ...], Tensor] | None = None  # see _training_draw
        self.queries = QueryGrid((1,) * self.ndim, (0,) * self.ndim) if queries is None else queries
        if not isinstance(self.queries, QueryGrid) or self.queries.ndim != self.ndim:
            raise TypeError(f"queries must be a QueryGrid with {self.ndim} axes, got {queries!r}")
        if self.queries.overhang > self.padding:
            raise ValueError(f"queries reach {self.queries.overhang} tokens beyond the image (query offset "
                             f"{self.queries.offset}) but padding={self.padding} zero tokens surround it")

    def output_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The query grid's shape (the input's own without a stride)."""
        return self.queries.shape(tuple(spatial_shape))

    def _check_samples(self, samples: int | None) -> int | None:
        if self.sampling == "all":
            if samples is not None:
                raise ValueError(f"samples is only used by sampling='random' or 'spatial', got samples={samples!r} "
                                 f"with sampling='all'")
            return None
        if samples is None:
            raise ValueError(f"sampling={self.sampling!r} needs samples (an int), got samples=None")
        samples = check_int("samples", samples, minimum=1)
        candidates = samples ** self.ndim if self.sampling == "spatial" else samples
        if candidates < self.k:
            what = f"samples**{self.ndim}={candidates} candidates" if self.sampling == "spatial" else "samples"
            raise ValueError(f"samples must give at least k candidates, got samples={samples} ({what}) < k={self.k}")
        return samples

    # ---- candidates ------------------------------------------------------------------------
    def padded_shape(self, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(s + 2 * self.padding for s in spatial_shape)

    def candidates(self, spatial_shape: tuple[int, ...], device: torch.device | None = None) -> Tensor | None:
        """Padded-grid indices of the keys a query may pick, ``(M,)``; ``None`` for all keys.

        Samples are image tokens (``sample_from='image'``) or tokens of the padded grid
        (``'padded'``). ``random`` draws a new set on each call in training mode (advancing
        the module's generator), so every forward, and every ``neighborhood(x)`` inspection,
        sees a fresh draw; in eval mode it takes one fixed draw per input shape (a generator
        seeded from ``seed``, 0 when None, and the shape), so inference is deterministic.
        """
        padded = self.padded_shape(spatial_shape)
        pool = padded if self.sample_from == "padded" else tuple(spatial_shape)
        size = math.prod(pool)
        if self.sampling == "all":
            return None
        if self.sampling == "random":
            if self.samples > size:
                raise ValueError(f"samples must be <= the {size} tokens of the {self.sample_from} grid {pool}, "
                                 f"got samples={self.samples}")
            if self.training and self.generator is not None:
                drawn = self._training_draw(pool, size)
            else:
                generator = self.generator if self.training else self._eval_generator(pool)
                drawn = torch.randperm(size, generator=generator)[: self.samples]
        else:
            if self.samples > min(pool):
                raise ValueError(f"spatial sampling takes samples={self.samples} evenly spaced tokens per axis, "
                                 f"more than the {self.sample_from} grid {pool} has on its shortest axis")
            axes = [torch.linspace(0, n - 1, self.samples, dtype=torch.float64).round().long() for n in pool]
            mesh = torch.meshgrid(*axes, indexing="ij")
            strides = [math.prod(pool[i + 1:]) for i in range(len(pool))]
            drawn = sum(m.reshape(-1) * s for m, s in zip(mesh, strides))
        if pool != padded:  # image-grid index -> padded-grid index
            drawn = image_in_padded_index(tuple(spatial_shape), self.padding)[drawn]
        return drawn.sort().values.to(device)

    def _training_draw(self, pool: tuple[int, ...], size: int) -> Tensor:
        """A fresh draw from the module's generator, except when a checkpoint recomputes the forward.

        ``torch.utils.checkpoint`` runs the forward a second time during backward and restores
        the global RNG for it, but not a module's own generator: a second draw would select
        other candidates than the forward whose graph is being differentiated. A forward
        running inside a backward pass (a recomputation, reentrant or not) therefore reuses
        the latest draw for this grid, the one the usual forward-then-backward step made.
        (With ``seed=None`` the global RNG is used, which the checkpoint restores itself.)
        """
        last = self._last_draw
        if torch._C._current_graph_task_id() != -1 and last is not None and last[0] == pool:
            return last[1]
        drawn = torch.randperm(size, generator=self.generator)[: self.samples]
        self._last_draw = (pool, drawn)
        return drawn

    def _eval_generator(self, shape: tuple[int, ...]) -> torch.Generator:
        """The generator of eval-mode random sampling: a function of ``seed`` and the grid shape only."""
        seed = 0 if self.seed is None else self.seed
        for n in shape:
            seed = (seed * 1_000_003 + int(n)) % (2**61 - 1)  # int(): jit.trace hands sizes as tensors
        return torch.Generator().manual_seed(seed)

    # ---- descriptors -----------------------------------------------------------------------
    def descriptors(self, x: Tensor, tokens: Tensor | None = None) -> Tensor:
        """What the padded grid's tokens are compared by, ``(B', Np, D)``; ``B'`` is 1 for ``positions``, else B.

        ``tokens``: ``x`` as contiguous ``(B, N, C)`` tokens, where the caller has them already.
        """
        spatial = tuple(x.shape[2:])
        if self.space == "positions":
            # 2 * integer grid index - (size - 1): grid_coordinates times a positive constant, so
            # every metric ranks alike, but exact, so equidistant tokens tie exactly (lower index wins)
            ticks = grid_coordinates(spatial, self.padding, normalize=False, dtype=x.dtype, device=x.device)
            keys = (2 * ticks - torch.tensor(spatial, dtype=x.dtype, device=x.device) + 1).unsqueeze(0)
        else:
            feats = to_tokens(x) if tokens is None else tokens  # (b, n, c)
            if self.space == "hybrid":
                mean = feats.mean(1, keepdim=True)
                std = feats.var(1, keepdim=True, correction=0).add(torch.finfo(x.dtype).eps).sqrt()
                feats = self.hybrid_lambda * (feats - mean) / std
            if self.padding == 0:  # the padded grid is the image; tokens made contiguous (rows scored whole)
                keys = feats.contiguous()
            else:  # padding tokens are zero vectors
                to_image, inside = padded_to_image_index(spatial, self.padding, device=x.device)
                keys = torch.where(inside.view(1, -1, 1), feats[:, to_image], feats.new_zeros(()))
            if self.space == "hybrid":
                coords = grid_coordinates(spatial, self.padding, dtype=x.dtype, device=x.device)
                keys = torch.cat([keys, (1 - self.hybrid_lambda) * coords.expand(keys.shape[0], -1, -1)], -1)
        return keys

    # ---- selection -------------------------------------------------------------------------
    def select(self, x: Tensor, inside: Tensor | None = None, tokens: Tensor | None = None) -> Tensor:
        """Padded-grid indices ``(B', N, k)`` of every query's k slots (no gradient).

        ``inside`` ``(Np,)`` marks the padded grid's image tokens (:func:`padded_to_image_index`;
        unused, kept for callers that pass it). ``tokens``: ``x`` as contiguous ``(B, N, C)``
        tokens, where the caller has them (the fast path gathers from them too).
        """
        spatial = tuple(x.shape[2:])
        with torch.no_grad():
            keys = self.descriptors(x.detach(), None if tokens is None else tokens.detach())
            if self.queries.is_identity:
                self_index = (torch.arange(keys.shape[1], device=x.device) if self.padding == 0  # (q,)
                              else image_in_padded_index(spatial, self.padding, x.device))
            else:  # the strided queries' padded-grid indices
                self_index = self.queries.flat_index(spatial, self.padding, x.device)
            # without padding or stride the queries are all the keys, in order: the same tensor (normalised once)
            queries = keys if self.padding == 0 and self.queries.is_identity else keys[:, self_index]
            cand = self.candidates(spatial, x.device)
            num_cand = keys.shape[1] if cand is None else cand.numel()
            if self.k > num_cand:
                raise ValueError(f"k must be <= the number of candidates, got k={self.k}, candidates={num_cand} "
                                 f"(grid {spatial}, padding={self.padding}, sampling={self.sampling!r})")
            if not self.self_first:
                chosen = self._search(queries, keys, cand, self.k, None)
            else:
                others = self._search(queries, keys, cand, self.k - 1, self_index) if self.k > 1 else None
                first = self_index.view(1, -1, 1).expand(queries.shape[0], -1, 1)
                chosen = first if others is None else torch.cat([first, others], -1)
            if self.order == "index":
                chosen = chosen.sort(-1).values
        return chosen

    def _search(self, queries: Tensor, keys: Tensor, cand: Tensor | None, k: int, exclude: Tensor | None) -> Tensor:
        """k-NN among the candidates (all keys when ``cand`` is None), excluding each query's ``exclude`` key."""
        if cand is None:
            return knn(queries, keys, k, self.metric, block_size=self.block_size, exclude=exclude)[1]
        sub = keys[:, cand]
        key_mask = None
        if exclude is not None:
            # position of each query inside the candidate list; a query that is not a candidate
            # excludes an extra, never-allowed dummy key (index M) instead
            m = cand.numel()
            where = torch.full((keys.shape[1],), m, dtype=torch.long, device=keys.device)
            where[cand] = torch.arange(m, device=keys.device)
            exclude = where[exclude]
            sub = torch.cat([sub, sub.new_zeros(sub.shape[0], 1, sub.shape[2])], 1)
            key_mask = torch.arange(m + 1, device=keys.device) < m
        found = knn(queries, sub, k, self.metric, block_size=self.block_size, key_mask=key_mask, exclude=exclude)[1]
        return cand[found]

    def forward(self, x: Tensor) -> Neighborhood:
        if torch.jit.is_tracing():
            # the stable top-k reinterprets float bits as integers (Tensor.view(dtype)), which the
            # TorchScript IR cannot alias-analyse: say so at once rather than fail inside torch
            raise RuntimeError(f"torch.jit.trace cannot trace {type(self).__name__} (hard k-NN selection: ConvNN, "
                               f"the KNN block): its tie rule views float scores as integers, which TorchScript "
                               f"does not support; use torch.export.export or torch.compile instead")
        self.check_input(x, self.ndim)
        spatial = tuple(x.shape[2:])
        to_image, inside = padded_to_image_index(spatial, self.padding, device=x.device)
        out = self.output_shape(spatial)
        chosen = self.select(x, inside).expand(x.shape[0], -1, -1)
        footprint = (PixelFootprint.pixels(spatial) if self.queries.is_identity
                     else PixelFootprint(spatial, TokenGrid.pixels(spatial), self.queries.token_grid(spatial)))
        if self.padding == 0:  # the padded grid is the image: indices are pixels, all valid
            return Neighborhood(num_keys=math.prod(spatial), query_shape=out, index=chosen, footprint=footprint)
        return Neighborhood(num_keys=math.prod(spatial), query_shape=out, index=to_image[chosen],
                            valid=inside[chosen], footprint=footprint)

    @property
    def selection(self) -> str:  # type: ignore[override]
        return "fixed" if self.space == "positions" else "hard content"

    @property
    def locality(self) -> str:  # type: ignore[override]
        return "local" if self.space == "positions" else "global"

    def cost(self, fast: bool) -> str:
        if fast and self.space == "positions" and self.sampling == "all":
            return "O(N k)"  # the k nearest are a window, a convolution
        return "O(N^2)" if self.sampling == "all" else "O(N s)"  # every pair, or s sampled candidates

    def extra_repr(self) -> str:
        s = f"k={self.k}, space={self.space!r}, metric={self.metric!r}"
        if self.padding:
            s += f", padding={self.padding}"
        if self.sampling != "all":
            s += f", sampling={self.sampling!r}, samples={self.samples}"
        if self.space == "hybrid":
            s += f", hybrid_lambda={self.hybrid_lambda:g}"
        if not self.self_first:
            s += ", self_first=False"
        if self.order != "score":
            s += f", order={self.order!r}"
        if self.seed is not None:
            s += f", seed={self.seed}"
        if self.sample_from != "image":
            s += f", sample_from={self.sample_from!r}"
        if not self.queries.is_identity:
            s += f", {self.queries.describe()}"
        return s
