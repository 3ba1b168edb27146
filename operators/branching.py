"""Branching layer of the ConvNN poster: a ConvNN branch and a convolution branch side by side.

``int(out_channels * ratio)`` output channels come from a :class:`ConvNN2d` (content-aware
neighbours), the rest from a :class:`Conv2d` with ``padding='same'`` (the fixed window);
the two are concatenated along channels (ConvNN first) and, by default, mixed by a 1x1
:class:`Conv2d`. Both branches are themselves ``NeighborAggregator`` configurations; this
module only places them in parallel. At ratio 0 (or 1) only the Conv2d (or ConvNN) branch
exists, so the layer is that branch (plus the optional 1x1 mix). :class:`BranchingConv1d`
is the same layer for sequences (:class:`ConvNN1d` beside a :class:`Conv1d`), the public
ConvNN code's ``Conv1d_Branching``; its 1x1 mix maps ``out_channels -> out_channels`` as the
2-D layer's does (that code's 1-D mix is built ``in_channels -> in_channels``, which runs
only when the two are equal).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from neighborhoods.checks import check_float, check_int
from neighborhoods.functional.similarity import Metric
from neighborhoods.selectors.hard_knn import Sampling

from .conv import Conv1d, Conv2d
from .convnn import ConvNN1d, ConvNN2d, Similarity
from ._renamed import renamed
from .registry import Example, register


_PARTS = {1: (ConvNN1d, Conv1d), 2: (ConvNN2d, Conv2d)}


class _BranchingNd(nn.Module):
    """What :class:`BranchingConv1d` and :class:`BranchingConv2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    spatial_dims: ClassVar[int]

    def __init__(self, in_channels: int, out_channels: int | None = None, ratio: float = 0.5,
                 kernel_size: int | tuple[int, ...] = 3, k: int = 9, similarity: Similarity = "cosine", sampling: Sampling = "all",
                 samples: int | None = None, candidate_padding: int | None = None, hybrid_lambda: float = 0.5,
                 metric: Metric | None = None, seed: int | None = None, pointwise: bool = True, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 padding: int | None = None) -> None:
        super().__init__()
        candidate_padding = renamed("padding", padding, "candidate_padding", candidate_padding,
                                    f"{type(self).__name__}'s padding is the ConvNN branch's ring of zero candidate tokens")
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", in_channels if out_channels is None else out_channels,
                                      minimum=1)
        self.ratio = check_float("ratio", ratio, low=0.0, high=1.0)
        if not isinstance(pointwise, bool):
            raise TypeError(f"pointwise must be a bool, got {pointwise!r} of type {type(pointwise).__name__}")
        factory = {"device": device, "dtype": dtype}
        out_channels = self.out_channels
        convnn, conv = _PARTS[self.spatial_dims]
        self.nn_channels = int(out_channels * self.ratio)
        conv_channels = out_channels - self.nn_channels
        self.convnn = convnn(in_channels, self.nn_channels, k, similarity, sampling, samples, candidate_padding,
                             hybrid_lambda, bias, metric, seed, **factory) if self.nn_channels else None
        self.conv = conv(in_channels, conv_channels, kernel_size, padding="same", bias=bias,
                         **factory) if conv_channels else None
        self.pointwise = conv(out_channels, out_channels, 1, bias=bias, **factory) if pointwise else None

    def forward(self, x: Tensor) -> Tensor:
        branches = [branch(x) for branch in (self.convnn, self.conv) if branch is not None]
        y = branches[0] if len(branches) == 1 else torch.cat(branches, 1)
        return self.pointwise(y) if self.pointwise is not None else y

    def reset_parameters(self) -> None:
        for layer in (self.convnn, self.conv, self.pointwise):
            if layer is not None:
                layer.reset_parameters()

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, ratio={self.ratio:g} (ConvNN channels: {self.nn_channels})"


@register(family="convnn", example=Example(dict(in_channels=4, out_channels=6, ratio=0.5, k=3), (2, 4, 10)))
class BranchingConv1d(_BranchingNd):
    """Concatenate a ConvNN1d branch (``int(out * ratio)`` channels) and a Conv1d 'same' branch.

    Arguments, submodules and attributes as :class:`BranchingConv2d`, for sequences: the
    ConvNN branch is a :class:`ConvNN1d`, the fixed branch and the optional 1x1 mix are
    :class:`Conv1d` layers.

    Shape:
        x: ``(B, C_in, N)`` -> ``(B, C_out, N)``.
    """

    spatial_dims = 1


@register(family="convnn", example=Example(dict(in_channels=4, out_channels=6, ratio=0.5), (2, 4, 5, 6)))
class BranchingConv2d(_BranchingNd):
    """Concatenate a ConvNN2d branch (``int(out * ratio)`` channels) and a Conv2d 'same' branch.

    Args:
        in_channels, out_channels: channels of the input and of the output (default: ``in_channels``).
        ratio: fraction of the output channels computed by the ConvNN branch, in [0, 1].
        kernel_size: the Conv2d branch's kernel (odd or even; ``padding='same'``).
        k, similarity, sampling, samples, candidate_padding, hybrid_lambda, metric, seed: the ConvNN
            branch's arguments (see :class:`ConvNN2d`). ``padding``, this argument's old name, still
            sets ``candidate_padding`` for one release, with a ``DeprecationWarning``.
        pointwise: follow the concatenation with a 1x1 Conv2d (``out -> out``), as the ConvNN code does.
        bias: biases of all convolutions.
        device, dtype: factory kwargs.

    Submodules: ``convnn`` (or ``None`` at ratio 0 / when ``int(out * ratio) == 0``), ``conv``
    (or ``None`` when every channel is ConvNN's), ``pointwise`` (or ``None``).

    Shape:
        x: ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``.
    """

    spatial_dims = 2
