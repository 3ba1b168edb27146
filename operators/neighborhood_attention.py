"""Neighbourhood attention (Hassani et al. 2023; dilated: Hassani & Shi 2022) as a NeighborAggregator.

A softmax over a fixed ``kernel_size`` window that shifts inward at the borders
(``NeighborhoodWindow``), then a ``WeightedMean`` of the projected values: the cell of the
spectrum between convolution (the same kind of window, a learned weight per slot) and
self-attention (a softmax over every key). The parameters are self-attention's, under the
same names (``selector.query``, ``selector.key``, ``combiner.value``, ``combiner.output``), so
a ``SelfAttention2d`` state_dict loads into ``NeighborhoodAttention2d`` and back; with a
window covering the whole input the two layers compute the same function.

``forward`` uses ``F.scaled_dot_product_attention`` with the window as a bool mask (up to
:data:`~neighborhoods.fast_paths.neighborhood_attention.MAX_MASKED_TOKENS` tokens);
``forward(x, path="reference")`` runs the explicit window neighbourhood.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from neighborhoods import NeighborAggregator
from neighborhoods.checks import check_bool, check_divisible, check_tensor
from neighborhoods.combiners import WeightedMean
from neighborhoods.paths import PathChoice
from neighborhoods.selectors import NeighborhoodWindow

from .registry import Example, register


class _NeighborhoodAttentionNd(NeighborAggregator):
    """What the 1-D, 2-D and 3-D neighbourhood-attention layers share (NAT, Eq. 2; DiNAT, Eq. 1).

    ``y_i = W_o concat_h sum_{j in window(i)} softmax_j(q_i . k_j / sqrt(d)) W_v x_j``, where
    ``window(i)`` holds ``kernel_size`` keys per axis, shifted inward at the borders so that
    every query has all of them (NATTEN's definition,
    :func:`~neighborhoods.functional.neighborhood_window.neighborhood_window_index`).

    Args:
        in_channels: C.
        num_heads: heads (divides ``qk_channels`` and ``value_channels``).
        kernel_size: window size, an int or one per axis; ``kernel_size * dilation`` must not
            exceed the input on any axis.
        dilation: gap between window taps (DiNAT), an int or one per axis.
        qk_channels, value_channels, out_channels: default ``in_channels``.
        bias: whether the projections carry biases.
        path: ``'auto'`` | ``'fast'`` | ``'reference'``, see :class:`~neighborhoods.NeighborAggregator`.
        identity_projections: no ``W_q, W_k, W_v, W_o``: the weights compare the raw features.

    Shape:
        x: ``(B, C, *spatial)`` with ``spatial_dims`` spatial axes -> ``(B, out_channels, *spatial)``.
    """

    spatial_dims: ClassVar[int]

    def __init__(self, in_channels: int, num_heads: int, kernel_size: int | tuple[int, ...],
                 dilation: int | tuple[int, ...] = 1, qk_channels: int | None = None,
                 value_channels: int | None = None, out_channels: int | None = None, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, identity_projections: bool = False) -> None:
        factory = {"device": device, "dtype": dtype}
        learned = not check_bool("identity_projections", identity_projections)
        combiner = WeightedMean(in_channels, value_channels, out_channels, value=learned, output=learned, bias=bias,
                                **factory)
        check_divisible("value_channels", combiner.value_channels, "num_heads", num_heads)
        super().__init__(NeighborhoodWindow(in_channels, kernel_size, dilation, qk_channels, num_heads, bias=bias,
                                            project=learned, ndim=self.spatial_dims, **factory),
                         combiner, path=path)

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.selector.kernel_size

    @property
    def dilation(self) -> tuple[int, ...]:
        return self.selector.dilation

    def forward(self, x: Tensor, *, path: PathChoice | None = None) -> Tensor:
        check_tensor("x", x, ndim=2 + self.spatial_dims)
        return super().forward(x, path=path)

    def extra_repr(self) -> str:
        s = f"{self.selector.extra_repr()}, out_channels={self.combiner.out_channels}"
        s += ", identity_projections=True" if self.selector.query is None else ""
        return s + (f", path={self.path!r}" if self.path != "auto" else "")


class NeighborhoodAttention1d(_NeighborhoodAttentionNd):
    """Multi-head neighbourhood attention over a sequence (NAT, Eq. 2; DiNAT, Eq. 1).

    Token ``i`` attends to the ``kernel_size`` tokens nearest it (dilated by ``dilation``),
    shifted inward at the ends. Arguments as :class:`NeighborhoodAttention2d`.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class NeighborhoodAttention2d(_NeighborhoodAttentionNd):
    """Multi-head neighbourhood attention over the pixels of an image (NAT, Eq. 2; DiNAT, Eq. 1).

    ``y_i = W_o concat_h sum_{j in window(i)} softmax_j(q_i . k_j / sqrt(d)) W_v x_j`` with
    ``window(i)`` the ``kernel_size`` window shifted inward at the borders (see
    :class:`_NeighborhoodAttentionNd` for the arguments). Holds :class:`SelfAttention2d`'s
    parameters under the same names.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2


class NeighborhoodAttention3d(_NeighborhoodAttentionNd):
    """Multi-head neighbourhood attention over the ``T H W`` tokens of a video or volume (NATTEN's 3-D).

    A ``kernel_size`` window per axis, shifted inward at the borders. Arguments as
    :class:`NeighborhoodAttention2d`.

    Shape:
        x: ``(B, C, T, H, W)`` -> ``(B, out_channels, T, H, W)``.
    """

    spatial_dims = 3


#: registry defaults that make ``create("neighborhood_attention2d", in_channels=C)`` complete
_DEFAULTS = {"num_heads": 1, "kernel_size": 3}
register(NeighborhoodAttention1d, family="attention",
         example=Example(dict(in_channels=4, num_heads=2, kernel_size=5), (2, 4, 11)), **_DEFAULTS)
register(NeighborhoodAttention2d, family="attention",
         example=Example(dict(in_channels=4, num_heads=2, kernel_size=3), (2, 4, 5, 6)), **_DEFAULTS)
register(NeighborhoodAttention3d, family="attention",
         example=Example(dict(in_channels=4, num_heads=2, kernel_size=(2, 3, 3)), (2, 4, 3, 4, 5)), **_DEFAULTS)
