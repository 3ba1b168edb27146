"""ConvNN (Kang & Farias, the ConvNN poster): k nearest tokens (``HardKNN``) + per-slot weights (``Conv1D``).

Algorithm 1 of the poster: score every pair of tokens, take each token's k nearest (itself
first), gather them into ``V'`` and convolve with kernel_size = stride = k. Here that is
``NeighborAggregator(HardKNN(k, ...), Conv1D(C_in, C_out, k))``; the weight is
``(C_out, C_in, k)``, slot 0 the query itself, slots 1..k-1 its most similar other tokens.

``similarity``:

=============  ===========  ==========  =========================================================
similarity     space        metric      slots
=============  ===========  ==========  =========================================================
``cosine``     features     cosine      self, then largest cosine first
``euclidean``  features     euclidean   self, then smallest squared distance first
``location``   positions    chebyshev   raster order over the grid padded by r = ceil((sqrt(k)-1)/2)
                                        (1-D: ceil((k-1)/2)): for k = (2r+1)^2 (1-D: 2r+1) exactly
                                        ``Conv2d(padding='same')`` (``Conv1d``)
``hybrid``     hybrid       euclidean   self, then nearest in ``[lambda * std. features,
                                        (1 - lambda) * coordinates]``
=============  ===========  ==========  =========================================================

The hybrid default metric is (squared) euclidean because it splits into
``lambda^2 |f_i - f_j|^2 + (1 - lambda)^2 |p_i - p_j|^2``, so lambda trades feature against
spatial distance as its name promises; ``metric=`` overrides any default.

``hybrid_lambda`` against the public ConvNN code's ``lambda_param`` (``Loc_Col``): both
build ``[lambda * features / scale, (1 - lambda) * coordinates]``, but the public code
divides all channels by one unbiased std taken over every channel and token of the padded
grid (zeros included, mean not removed) and gives each axis of the *padded* grid its own
``linspace(-1, 1)``, while here each channel is standardised over the image's tokens and the
image's longest axis spans [-1, 1] with one spacing for every axis (padding tokens beyond).
The squared distance is ``lambda^2 |df|^2 / sigma^2 + (1 - lambda)^2 |dp|^2`` in both, so the
rankings agree when ``(1 - lambda) / lambda = rho * s * (1 - lambda_pub) / lambda_pub``, i.e.

    lambda = 1 / (1 + rho * s * (1 - lambda_pub) / lambda_pub)

with ``s = (n - 1) / (n + 2 p - 1)`` (their coordinate step over ours: ``n`` tokens per axis,
``p`` padding; 1 without padding on a square image; a non-square image has a different
``s`` per axis, which no single lambda absorbs) and ``rho = sigma_pub / sigma`` (their pooled
std over ours: 1 when every channel has the same variance and there is no padding, up to the
``N / (N - 1)`` of the unbiased estimate). ``lambda = lambda_pub`` at 0, 1, and at any value
when ``rho * s = 1``.

Pixel shuffle (the public ConvNN code's ``shuffle_pattern`` and ``shuffle_scale``): with
pattern ``'B'`` (before) the input is pixel-unshuffled by the scale ``s`` first, so the
k-NN runs on ``s^2`` times fewer tokens of ``s^2`` times more channels (2-D,
``F.pixel_unshuffle``; 1-D, the code's ``PixelUnshuffle1D``, a reshape ``(C, N) -> (C s,
N / s)``); with ``'A'`` (after) the output is pixel-shuffled, ``s^2`` (1-D: ``s``) times
more output channels of the convolution becoming an ``s`` times larger grid; ``'BA'`` does
both (same grid in and out), ``'NA'`` neither. The weight then has the widened channels,
``(C_out s^2 [A], C_in s^2 [B], k)``, as the code's ``conv1d_layer``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar, Literal, get_args

import torch
from einops import rearrange
from torch import Tensor

from neighborhoods import NeighborAggregator, Neighborhood
from neighborhoods.checks import check_channels, check_choice, check_int
from neighborhoods.footprint import PixelFootprint, TokenGrid
from neighborhoods.combiners import Conv1D
from neighborhoods.query_grid import QueryGrid
from neighborhoods.selectors import HardKNN
from neighborhoods.functional.similarity import Metric
from neighborhoods.paths import PathChoice
from neighborhoods.selectors.hard_knn import SampleFrom, Sampling

from .conv import ConvWeights
from .registry import Example, register

#: how ConvNN compares tokens (see the module docstring)
Similarity = Literal["cosine", "euclidean", "location", "hybrid"]
SIMILARITIES: tuple[str, ...] = get_args(Similarity)
#: similarity -> (HardKNN space, default metric)
_SPACE = {"cosine": ("features", "cosine"), "euclidean": ("features", "euclidean"),
          "location": ("positions", "chebyshev"), "hybrid": ("hybrid", "euclidean")}


#: the public ConvNN code's pixel-shuffle patterns: Before, After, Before and After, Not Applicable
ShufflePattern = Literal["NA", "B", "A", "BA"]
SHUFFLE_PATTERNS: tuple[str, ...] = get_args(ShufflePattern)


def pixel_unshuffle(x: Tensor, scale: int) -> Tensor:
    """``(B, C, H, W) -> (B, C s^2, H / s, W / s)`` (``F.pixel_unshuffle``); ``(B, C, N) -> (B, C s, N / s)``.

    The 1-D form is the public ConvNN code's ``PixelUnshuffle1D``: a reshape of the row-major
    ``(C, N)`` block, so output channel ``c s + j`` holds tokens ``j N / s .. (j + 1) N / s - 1``
    of channel ``c``. An axis that ``scale`` does not divide is a ValueError naming both.
    """
    if any(n % scale for n in x.shape[2:]):
        raise ValueError(f"shuffle_scale={scale} must divide every spatial size of x, got x of shape {tuple(x.shape)}")
    if x.ndim == 4:  # F.pixel_unshuffle's layout; rearrange keeps the shape of an empty tensor, which it does not
        return rearrange(x, "b c (h i) (w j) -> b (c i j) h w", i=scale, j=scale)
    return x.reshape(x.shape[0], x.shape[1] * scale, x.shape[2] // scale)


def pixel_shuffle(y: Tensor, scale: int) -> Tensor:
    """The inverse of :func:`pixel_unshuffle`: ``(B, C s^2, H, W) -> (B, C, H s, W s)``; 1-D ``(B, C s, N) -> (B, C, N s)``."""
    if y.ndim == 4:  # F.pixel_shuffle's layout
        return rearrange(y, "b (c i j) h w -> b c (h i) (w j)", i=scale, j=scale)
    return y.reshape(y.shape[0], y.shape[1] // scale, y.shape[2] * scale)


def unshuffled_footprint(footprint: PixelFootprint | None, spatial: tuple[int, ...],
                         scale: int) -> PixelFootprint | None:
    """A footprint on the unshuffled grid placed on the pixels of the input ``spatial`` it came from.

    2-D: an unshuffled token is an ``s x s`` block (a window of ``w`` tokens, ``w s`` pixels);
    1-D: the reshape's token ``t`` is the pixels ``t + j N / s``, ``j < s`` (a dilated grid).
    ``None`` where a token is not one such grid (a 1-D window of several unshuffled tokens).
    """
    if footprint is None:
        return None

    def place(grid: TokenGrid) -> TokenGrid | None:
        if len(spatial) == 2:
            if any(d != 1 and k > 1 for d, k in zip(grid.dilation, grid.size)):
                return None
            return TokenGrid(grid.shape, tuple(k * scale for k in grid.size), tuple(st * scale for st in grid.stride),
                             tuple(o * scale for o in grid.offset), (1, 1), grid.copies)
        if grid.size[0] > 1:
            return None
        return TokenGrid(grid.shape, (scale,), grid.stride, grid.offset, (spatial[0] // scale,), grid.copies)

    keys, queries = place(footprint.keys), place(footprint.queries)
    return None if keys is None or queries is None else PixelFootprint(tuple(spatial), keys, queries)


#: the one-release warning for ConvNN's ``padding``, whose meaning changed (issue 18 item 4)
_PADDING_CHANGED = (
    "ConvNN's padding={padding!r} is now a convolution's padding: with stride it sets the output grid, as "
    "torch.nn.Conv{d}d's does. The ring of zero candidate tokens it meant before is candidate_padding. Pass "
    "candidate_padding= (or stride=) as well to say which you mean; this warning goes in the next release.")


def location_padding(k: int, ndim: int = 2) -> int:
    """The smallest r with (2r+1)^ndim >= k, i.e. ceil((k^(1/ndim) - 1) / 2): room for k spatial neighbours.

    2-D: r = ceil((sqrt(k) - 1) / 2); 1-D: r = ceil((k - 1) / 2).
    """
    r = 0
    while (2 * r + 1) ** ndim < k:
        r += 1
    return r


class _ConvNNNd(ConvWeights, NeighborAggregator):
    """What :class:`ConvNN1d`, :class:`ConvNN2d` and ``ConvNN3d`` share; ``spatial_dims`` (1, 2, 3) picks the layout."""

    spatial_dims: ClassVar[int]
    #: ``stride`` / ``padding`` are a convolution's: queries on its output grid (operators.swap reads this)
    strided_queries: ClassVar[bool] = True

    def __init__(self, in_channels: int, out_channels: int | None = None, k: int = 9, similarity: Similarity = "cosine",
                 sampling: Sampling = "all", samples: int | None = None, candidate_padding: int | None = None,
                 hybrid_lambda: float = 0.5, bias: bool = True, metric: Metric | None = None, seed: int | None = None,
                 block_size: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, sample_from: SampleFrom = "image", *,
                 stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str | None = None,
                 shuffle_pattern: ShufflePattern = "NA", shuffle_scale: int = 1) -> None:
        k = check_int("k", k, minimum=1)
        shuffle_pattern = check_choice("shuffle_pattern", shuffle_pattern, SHUFFLE_PATTERNS)
        shuffle_scale = check_int("shuffle_scale", shuffle_scale, minimum=1)
        if shuffle_pattern != "NA" and self.spatial_dims not in (1, 2):
            raise ValueError(f"shuffle_pattern is the public ConvNN code's 1-D / 2-D pixel shuffle; "
                             f"{type(self).__name__} takes only 'NA', got shuffle_pattern={shuffle_pattern!r}")
        c_in = check_int("in_channels", in_channels, minimum=1)
        c_out = check_int("out_channels", c_in if out_channels is None else out_channels, minimum=1)
        widen = shuffle_scale ** self.spatial_dims  # channels per token gained by unshuffling
        inner_in = c_in * widen if "B" in shuffle_pattern else c_in
        inner_out = c_out * widen if "A" in shuffle_pattern else c_out
        similarity = check_choice("similarity", similarity, SIMILARITIES)
        space, default_metric = _SPACE[similarity]
        location = similarity == "location"
        radius = location_padding(k, self.spatial_dims)
        if padding is not None and not isinstance(padding, str) and candidate_padding is None and stride in (1, (1,) * self.spatial_dims):
            warnings.warn(_PADDING_CHANGED.format(d=self.spatial_dims, padding=padding), DeprecationWarning,
                          stacklevel=2)
        queries = QueryGrid.of_conv(self.spatial_dims, stride, padding, radius)
        if candidate_padding is None:  # room for the windows (location) and for queries beyond the image
            candidate_padding = (radius if location else 0) + queries.overhang
        super().__init__(
            HardKNN(k, space=space, metric=default_metric if metric is None else metric, ndim=self.spatial_dims,
                    padding=candidate_padding, sampling=sampling, samples=samples, hybrid_lambda=hybrid_lambda,
                    self_first=not location, order="index" if location else "score", block_size=block_size,
                    seed=seed, sample_from=sample_from, queries=queries),
            Conv1D(inner_in, inner_out, k, bias=bias, device=device, dtype=dtype),
        )
        self.similarity = similarity
        self.shuffle_pattern = shuffle_pattern
        self.shuffle_scale = shuffle_scale
        self._channels = (c_in, c_out)
        self.hold_weights()

    @property
    def in_channels(self) -> int:  # type: ignore[override]
        """Channels of the layer's input (the combiner's are ``s^d`` times more after an unshuffle)."""
        return self._channels[0]

    @property
    def out_channels(self) -> int:  # type: ignore[override]
        """Channels of the layer's output (the combiner's are ``s^d`` times more before a shuffle)."""
        return self._channels[1]

    def unshuffle(self, x: Tensor) -> Tensor:
        """The input the k-NN and the convolution see: pixel-unshuffled for patterns ``'B'`` and ``'BA'``."""
        return pixel_unshuffle(x, self.shuffle_scale) if "B" in self.shuffle_pattern else x

    def neighborhood(self, x: Tensor, **kwargs: Any) -> Neighborhood:
        """What the selector picks for ``x``.

        For patterns ``'B'`` and ``'BA'`` the tokens are those of the unshuffled grid; its
        footprint places each on the input pixels it holds (an ``s x s`` block in 2-D), so
        ``query_map`` paints onto ``x``'s own pixels.
        """
        if "B" not in self.shuffle_pattern:
            return super().neighborhood(x, **kwargs)
        self.selector.check_input(x, self.spatial_dims)
        check_channels("x", x, self.in_channels)
        nbhd = super().neighborhood(self.unshuffle(x), **kwargs)
        return dataclasses.replace(nbhd, footprint=unshuffled_footprint(nbhd.footprint, tuple(x.shape[2:]),
                                                                        self.shuffle_scale))

    @property
    def candidate_padding(self) -> int:
        """Zero tokens around the grid that queries may pick (the selector's ``padding``)."""
        return self.selector.padding

    @property
    def k(self) -> int:
        return self.selector.k

    def forward(self, x: Tensor, *, path: PathChoice | None = None) -> Tensor:
        """The output on the query grid: ``x``'s own size at stride 1 (default padding), else a convolution's."""
        if self.shuffle_pattern == "NA":
            # checked once, by NeighborAggregator.forward: rank (spatial_dims), then channels, dtype and device
            return super().forward(x, path=path)
        self.selector.check_input(x, self.spatial_dims)
        check_channels("x", x, self.in_channels)
        y = super().forward(self.unshuffle(x), path=path)
        return pixel_shuffle(y, self.shuffle_scale) if "A" in self.shuffle_pattern else y

    def extra_repr(self) -> str:
        # the selector's padding is this layer's candidate_padding (the conv-style padding sets the query grid)
        selector = self.selector.extra_repr().replace("padding=", "candidate_padding=")
        s = f"{self.in_channels}, {self.out_channels}, similarity={self.similarity!r}, {selector}"
        if self.shuffle_pattern != "NA":
            s += f", shuffle_pattern={self.shuffle_pattern!r}, shuffle_scale={self.shuffle_scale}"
        return s + (", bias=False" if self.bias is None else "")


class ConvNN1d(_ConvNNNd):
    """ConvNN over (B, C, N): every token aggregates its k nearest tokens (see the module docstring).

    Arguments as :class:`ConvNN2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, C_out, N)``; weight ``(C_out, C_in, k)``, bias ``(C_out,)``.
    """

    spatial_dims = 1


class ConvNN2d(_ConvNNNd):
    """ConvNN over (B, C, H, W): every token aggregates its k nearest tokens (see the module docstring).

    Args:
        in_channels: C of the input.
        out_channels: channels of the output (default: C).
        k: slots per token (the weight's last axis), default 9.
        similarity: ``'cosine'`` | ``'euclidean'`` | ``'location'`` | ``'hybrid'`` (module docstring).
        sampling, samples: candidate sampling of :class:`~neighborhoods.selectors.HardKNN`
            (``'all'``, ``'random'`` with ``samples`` tokens, ``'spatial'`` with ``samples`` per axis).
            ``'random'`` draws afresh on every training forward and uses one fixed draw per
            input shape in eval mode (deterministic inference).
        sample_from: ``'image'`` (default): random / spatial samples are image tokens;
            ``'padded'``: they are drawn from the zero-padded grid, padding tokens included.
        candidate_padding: zero tokens added around the grid as candidates (called ``padding``
            before; for one release, ``padding`` alone at stride 1 warns that it now means the
            convolution's padding, with a ``DeprecationWarning``);
            default 0 for feature similarity and r = ceil((sqrt(k)-1)/2) (1-D: ceil((k-1)/2)) for
            ``'location'``, plus however far queries reach beyond the image (``padding > r``).
        hybrid_lambda: feature weight of ``'hybrid'``, in [0, 1].
        bias: learn a bias ``(C_out,)``.
        metric: override the similarity's default metric.
        seed: seed of random sampling (reproducible draws).
        block_size: queries scored at a time by the k-NN search; ``None`` picks it from free
            memory (:func:`~neighborhoods.functional.knn.auto_block_size`); never changes the result.
        device, dtype: factory kwargs of the weight.
        stride, padding: a convolution's, for the output grid
            (:class:`~neighborhoods.query_grid.QueryGrid`): queries are the tokens where a
            (2r+1)-wide window with this stride and padding is centred, keys stay the whole
            grid; ``padding=None`` centres them (r, i.e. 'same' at stride 1). With
            ``'location'`` and k = (2r+1)^2 the layer is exactly ``Conv2d(kernel_size=2r+1,
            stride=stride, padding=padding)``.
        shuffle_pattern, shuffle_scale: the public ConvNN code's pixel shuffle (module
            docstring): ``'NA'`` (default), ``'B'`` (``F.pixel_unshuffle`` by ``shuffle_scale``
            before), ``'A'`` (``F.pixel_shuffle`` after) or ``'BA'``. ``stride``, ``padding``,
            ``k`` and sampling then act on the unshuffled grid, and ``neighborhood(x)`` is
            that grid's. :class:`ConvNN1d` takes them too (the code's 1-D reshape).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, C_out, H_out, W_out)``, ``H_out = floor((H + 2 padding - 2r - 1)
        / stride) + 1`` (H itself by default); weight ``(C_out, C_in, k)``, bias ``(C_out,)``.
        With a shuffle (scale s): ``H_out`` of the unshuffled ``H / s`` ('B', 'BA'), times s
        after ('A', 'BA'); weight ``(C_out s^2 [A], C_in s^2 [B], k)``.
    """

    spatial_dims = 2


_EX2D = dict(in_channels=4, out_channels=6, k=5)
register(ConvNN1d, family="convnn", example=Example(dict(in_channels=4, out_channels=6, k=3), (2, 4, 10)),
         aliases=["convnn1d"])
register(ConvNN2d, family="convnn", example=Example(_EX2D, (2, 4, 5, 6)), aliases=["convnn2d"])
register(ConvNN1d, family="convnn", example=Example(dict(in_channels=4, out_channels=6, k=3), (2, 4, 10)),
         variant="location", aliases=["convnn1d_location"], similarity="location")
for _variant, _presets, _example in (
        ("euclidean", dict(similarity="euclidean"), Example(_EX2D, (2, 4, 5, 6))),
        ("location", dict(similarity="location"), Example(dict(_EX2D, k=9), (2, 4, 5, 6))),
        ("hybrid", dict(similarity="hybrid"), Example(_EX2D, (2, 4, 5, 6))),
        ("random", dict(sampling="random", samples=16), Example(dict(_EX2D, seed=0), (2, 4, 6, 6))),
        ("spatial", dict(sampling="spatial", samples=3), Example(_EX2D, (2, 4, 6, 6)))):
    register(ConvNN2d, family="convnn", example=_example, variant=_variant, aliases=[f"convnn2d_{_variant}"],
             **_presets)
#: the public ConvNN code's pixel shuffle: unshuffle by 2 before, shuffle by 2 after (same grid in and out)
register(ConvNN2d, family="convnn", example=Example(_EX2D, (2, 4, 6, 6)), variant="shuffle",
         shuffle_pattern="BA", shuffle_scale=2)
