"""The neural nearest neighbours (N3) block (Ploetz & Roth 2018) and its hard-KNN baseline.

``N3Block2d = NeighborAggregator(N3 selector, Projection combiner)``: an embedding network and
a temperature network (the paper's appendix, Tables 7 and 8) feed the continuous k-NN
selection of patches in a search window; the combiner concatenates the input with the k
neighbour volumes, folded back to the image (col2im averaging overlaps), and a 1x1
projection maps that ``(k + 1) C``-channel concatenation to ``out_channels`` (default C, so
that the block drops into any network). ``project=False`` returns the concatenation itself,
the block's output in the paper (Fig. 2a), whose ``(k + 1) C`` channels the next layer of
N3Net takes.

Images that the patches do not tile are zero-padded to the next size they do and the output
is cropped back (the authors' public code does the same); a search window larger than the
image covers all of it. The presets ``n3_block2d_digits`` (3x3 patches every pixel, 7x7
window: 8x8 digits) and ``n3_block2d_cifar`` (4x4 patches every 2 pixels, 16x16 window:
32x32 images) scale the paper's 10 / 5 / 80 pixels down to small images.
``KNNBlock2d`` is the same block with hard k-NN on the input's own patches (a fixed feature
space, the paper's "KNN block" baseline); ``N3Block1d`` is the block for set data (items are
tokens, searched among all items by default, as in the correspondence experiment).

Every block matches an item against the others (``exclude_self=True``, the paper's block) or
against all items, itself included (``exclude_self=False``), and cross-matches, as the
authors' ``N3Aggregation2D(x, xe, ye, y)`` allows: ``block(x, database=d)`` takes the queries
(and the concatenated input, and the temperature) from ``x`` and the candidates, compared in
the same embedding and aggregated into the neighbour volumes, from ``d``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

import torch
from torch import nn

from neighborhoods import NeighborAggregator, Neighborhood
from neighborhoods.checks import check_bool, check_choice, check_int
from neighborhoods.combiners import Projection
from neighborhoods.selectors import N3
from neighborhoods.functional.continuous_knn import Update
from neighborhoods.paths import PathChoice, resolve_path
from torch import Tensor

from ._renamed import renamed
from .registry import Example, register

#: where the k-NN temperature comes from (a network of the input, or one learned scalar)
Temperature = Literal["network", "scalar"]
TEMPERATURES: tuple[str, ...] = get_args(Temperature)


def _patch_stride(stride: int | None, patch_stride: int) -> int:
    """``patch_stride``, or the old ``stride=`` with a DeprecationWarning (issue 18 item 4)."""
    given = None if patch_stride == 5 else patch_stride  # 5 is the default: not given
    value = renamed("stride", stride, "patch_stride", given,
                    "N3's stride is the step between its patches, not a convolution's stride: the block "
                    "never downsamples")
    return patch_stride if value is None else value


_LAYERS = {1: (nn.Conv1d, nn.BatchNorm1d, 1), 2: (nn.Conv2d, nn.BatchNorm2d, 3)}


def embedding_network(in_channels: int, out_channels: int, hidden_channels: int = 64, depth: int = 3,
                      spatial_dims: int = 2, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> nn.Sequential:
    """``depth - 1`` x (Conv/BN/ReLU, ``hidden_channels``) then a Conv to ``out_channels``.

    Tables 7 (embedding, 8 outputs) and 8 (temperature, 1 output) of Ploetz & Roth 2018:
    3x3 convolutions, stride 1, padding 1, for images; for set data (``spatial_dims=1``) the
    convolutions are 1x1, i.e. an MLP applied to every item.
    """
    conv, bn, kernel = _LAYERS[spatial_dims]
    depth = check_int("depth", depth, minimum=1)
    hidden_channels = check_int("hidden_channels", hidden_channels, minimum=1)
    factory = {"device": device, "dtype": dtype}
    layers: list[nn.Module] = []
    c = check_int("in_channels", in_channels, minimum=1)
    for _ in range(depth - 1):
        layers += [conv(c, hidden_channels, kernel, padding=kernel // 2, **factory), bn(hidden_channels, **factory),
                   nn.ReLU()]
        c = hidden_channels
    layers.append(conv(c, check_int("out_channels", out_channels, minimum=1), kernel, padding=kernel // 2, **factory))
    return nn.Sequential(*layers)


class _N3Nd(NeighborAggregator):
    spatial_dims: ClassVar[int]

    def _build(self, in_channels: int, k: int, patch_size: int | None, patch_stride: int | None, window: int | None,
               embed_channels: int, hidden_channels: int, depth: int, temperature: str, temp_bias: float,
               distance_bn: bool, relative: bool, out_channels: int | None, project: bool, update: str, hard: bool,
               factory: dict, path: str, identity_projections: bool = False, exclude_self: bool = True) -> None:
        if not isinstance(project, bool):
            raise TypeError(f"project must be a bool, got {project!r} of type {type(project).__name__}")
        if not project and out_channels is not None:
            raise ValueError(f"project=False returns the (k + 1) * in_channels = {(k + 1) * in_channels} channels of "
                             f"the concatenation; out_channels must be None, got out_channels={out_channels}")
        if project:
            out_channels = in_channels if out_channels is None else out_channels
        if not hard:  # the embedding network's out_channels, under the name the user passed
            check_int("embed_channels", embed_channels, minimum=1)
        nets = dict(hidden_channels=hidden_channels, depth=depth, spatial_dims=self.spatial_dims, **factory)
        check_choice("temperature", temperature, TEMPERATURES)
        raw = hard or check_bool("identity_projections", identity_projections)
        embedding = None if raw else embedding_network(in_channels, embed_channels, **nets)
        temp = embedding_network(in_channels, 1, **nets) if temperature == "network" and not hard else None
        selector = N3(k, embedding, temp, temp_bias, patch_size, patch_stride, window, distance_bn, hard, update,
                      exclude_self=exclude_self, **factory)
        NeighborAggregator.__init__(self, selector, Projection(in_channels, k, out_channels, relative,
                                                               selector.patches, **factory), path=path)
        self.project = project

    def forward(self, x: Tensor, *, path: PathChoice | None = None, database: Tensor | None = None) -> Tensor:
        """The block on ``x``; with ``database`` (``x``'s shape), candidates come from it (cross matching)."""
        if database is None:
            return super().forward(x, path=path)
        if resolve_path(path, self.path) == "fast":
            raise ValueError(f"path='fast' but {self.why_not_fast(x)}; use path='auto' or 'reference'")
        self.check_input(x)
        self.selector.check_database(x, database)
        if 0 in x.shape[2:]:
            return self.empty_output(x) + 0 * database.sum()
        return self.combiner(x, self.selector(x, database=database), values=database)

    def neighborhood(self, x: Tensor, database: Tensor | None = None) -> Neighborhood:  # type: ignore[override]
        """What the selector picks for ``x`` (among the items of ``database``, if given)."""
        return self.selector(x, database=database)

    def extra_repr(self) -> str:
        s = f"{self.combiner.in_channels}, {self.selector.extra_repr()}, out_channels={self.combiner.out_channels}"
        return s + ("" if self.project else ", project=False")


class N3Block2d(_N3Nd):
    """The N3 block for images (Ploetz & Roth 2018, Sec. 4, Fig. 2a; appendix Tables 7-8).

    Defaults are the paper's denoising setting: k = 7 volumes, 10x10 patches every 5 pixels,
    an 80x80 search window (224 candidates per patch), an 8-channel embedding, temperature
    ``exp(log_t) * 0.1`` with ``log_t`` from the temperature network averaged over each patch.

    Args:
        in_channels: C.
        k: neighbour volumes.
        patch_size, patch_stride, window: patch items, the step between patches, and the search
            window, in pixels. ``patch_stride`` was called ``stride``; for one release ``stride=``
            is still read as ``patch_stride``, with a ``DeprecationWarning`` (the block never
            downsamples: its output has the input's size).
        embed_channels, hidden_channels, depth: the embedding / temperature networks.
        temperature: ``'network'`` (Table 8) or ``'scalar'`` (one learned ``log_t``).
        temp_bias: the constant factor of the temperature.
        distance_bn: batch-normalise the distances.
        relative: concatenate ``[y, N_1 - y, ...]`` (default, the public code) or ``[y, N_1, ...]``.
        out_channels: channels of the 1x1 projection of the concatenation (default C).
        project: ``False`` returns the ``(k + 1) C``-channel concatenation itself (the paper's
            output; ``out_channels`` must then be ``None``).
        update: the weight recursion of :func:`~neighborhoods.functional.continuous_knn`.
        identity_projections: no embedding network: distances are measured between the raw
            input patches (as in :class:`KNNBlock2d`, but soft), so an untrained block already
            matches similar patches; ``embed_channels`` is then unused.
        exclude_self: leave each query patch out of its own candidates (default, the paper's
            block); ``False`` keeps it, so the window holds one more candidate.

    ``forward(x, database=d)`` matches the patches of ``x`` against those of ``d`` (cross
    matching, module docstring); ``neighborhood(x, database=d)`` shows that selection.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)`` (``project=False``: ``(B, (k + 1) C, H, W)``).
    """

    spatial_dims = 2

    def __init__(self, in_channels: int, k: int = 7, patch_size: int = 10, patch_stride: int = 5,
                 window: int | None = 80,
                 embed_channels: int = 8, hidden_channels: int = 64, depth: int = 3, temperature: Temperature = "network",
                 temp_bias: float = 0.1, distance_bn: bool = False, relative: bool = True,
                 out_channels: int | None = None, update: Update = "scores", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, path: PathChoice = "auto", *, project: bool = True,
                 identity_projections: bool = False, stride: int | None = None, exclude_self: bool = True) -> None:
        patch_stride = _patch_stride(stride, patch_stride)
        self._build(in_channels, k, patch_size, patch_stride, window, embed_channels, hidden_channels, depth, temperature,
                    temp_bias, distance_bn, relative, out_channels, project, update, False,
                    {"device": device, "dtype": dtype}, path, identity_projections, exclude_self)


class KNNBlock2d(_N3Nd):
    """The N3 block with hard k-NN on the input's own patches (Ploetz & Roth 2018, Sec. 5.1, baseline iii).

    Same patches, window and output layout as :class:`N3Block2d`; the k nearest candidates
    (negative squared euclidean distance between input patches, ties to the lower index)
    replace the continuous weights, so nothing about the matching is learned.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)`` (``project=False``: ``(B, (k + 1) C, H, W)``).
    """

    spatial_dims = 2

    def __init__(self, in_channels: int, k: int = 7, patch_size: int = 10, patch_stride: int = 5,
                 window: int | None = 80,
                 relative: bool = True, out_channels: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, path: PathChoice = "auto", *, project: bool = True,
                 stride: int | None = None, exclude_self: bool = True) -> None:
        patch_stride = _patch_stride(stride, patch_stride)
        self._build(in_channels, k, patch_size, patch_stride, window, 1, 1, 1, "scalar", 1.0, False, relative,
                    out_channels, project, "scores", True, {"device": device, "dtype": dtype}, path,
                    exclude_self=exclude_self)


class N3Block1d(_N3Nd):
    """The N3 block for set data (Ploetz & Roth 2018, Sec. 4 and 5.5): items are tokens.

    The embedding and temperature networks are MLPs on every item (1x1 convolutions); each
    item searches all other items (``window=None``) or a window of items around it.

    Args: as :class:`N3Block2d` without the patches (``window`` counts items).
    ``identity_projections=True`` drops the embedding network (raw item features are compared).

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)`` (``project=False``: ``(B, (k + 1) C, N)``).
    """

    spatial_dims = 1

    def __init__(self, in_channels: int, k: int = 7, window: int | None = None, embed_channels: int = 8,
                 hidden_channels: int = 64, depth: int = 3, temperature: Temperature = "network", temp_bias: float = 0.1,
                 distance_bn: bool = False, relative: bool = True, out_channels: int | None = None,
                 update: Update = "scores", device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, project: bool = True,
                 identity_projections: bool = False, exclude_self: bool = True) -> None:
        self._build(in_channels, k, None, None, window, embed_channels, hidden_channels, depth, temperature,
                    temp_bias, distance_bn, relative, out_channels, project, update, False,
                    {"device": device, "dtype": dtype}, path, identity_projections, exclude_self)


_SMALL_NETS = dict(embed_channels=4, hidden_channels=8)
register(N3Block2d, family="n3", example=Example(dict(in_channels=3, k=2, patch_size=4, patch_stride=2, window=8,
                                                      **_SMALL_NETS), (2, 3, 12, 12)), aliases=["n3block2d"])
#: the paper's 10 / 5 / 80 pixel patches, stride and window, scaled to 8x8 and 32x32 images
SMALL_IMAGE_PRESETS = {"digits": dict(patch_size=3, patch_stride=1, window=7),
                       "cifar": dict(patch_size=4, patch_stride=2, window=16)}
for _variant, _sizes in SMALL_IMAGE_PRESETS.items():
    register(N3Block2d, family="n3", variant=_variant, example=Example(dict(in_channels=3, k=2, **_SMALL_NETS),
                                                                       (2, 3, 8, 8)), **_sizes)
register(KNNBlock2d, family="n3", example=Example(dict(in_channels=3, k=2, patch_size=4, patch_stride=2, window=8),
                                                  (2, 3, 12, 12)), aliases=["knnblock2d"])
register(N3Block1d, family="n3", example=Example(dict(in_channels=4, k=2, **_SMALL_NETS), (2, 4, 9)),
         aliases=["n3block1d"])
