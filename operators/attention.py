"""Self-attention as a NeighborAggregator: every key, softmax-weighted (``SoftmaxAll``), then a
``WeightedMean`` of the values.

``SelfAttention`` is a drop-in for ``torch.nn.MultiheadAttention`` used as self-attention
with ``batch_first=True``: same constructor arguments (``embed_dim, num_heads, bias``), same
state_dict keys (``in_proj_weight`` = [W_q; W_k; W_v], ``in_proj_bias``, ``out_proj.weight``,
``out_proj.bias``), same mask conventions. ``forward`` uses ``F.scaled_dot_product_attention``;
``forward(..., path="reference")`` runs the explicit neighbourhood.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from neighborhoods import NeighborAggregator, Neighborhood
from neighborhoods.checks import check_bool, check_channels, check_divisible, check_int, check_tensor
from neighborhoods.combiners import WeightedMean
from neighborhoods.lifting import lift, lift_packed
from neighborhoods.selectors import SoftmaxAll
from neighborhoods.paths import PathChoice
from neighborhoods.query_grid import QueryGrid

from .registry import Example, register



def mha_mask(attn_mask: Tensor | None, key_padding_mask: Tensor | None, batch: int, heads: int,
             n: int, dtype: torch.dtype) -> Tensor | None:
    """``nn.MultiheadAttention``'s two masks as one mask in the selector's convention.

    MHA: a bool ``True`` means *masked out*, a float is added to the scores; ``attn_mask`` is
    ``(N, N)`` or ``(B * H, N, N)``, ``key_padding_mask`` ``(B, N)``. Returned: bool ``True``
    = may attend (SDPA's convention) when both are bool, else one additive float mask;
    ``(N, N)`` or ``(B, H, N, N)``.
    """
    masks, names = [], []
    if attn_mask is not None:
        check_tensor("attn_mask", attn_mask, floating=False)
        if tuple(attn_mask.shape) not in ((n, n), (batch * heads, n, n)):
            raise ValueError(f"attn_mask must have shape (N, N)={(n, n)} or (B * num_heads, N, N)="
                             f"{(batch * heads, n, n)}, got {tuple(attn_mask.shape)}")
        masks.append(attn_mask if attn_mask.ndim == 2 else attn_mask.view(batch, heads, n, n))
        names.append("attn_mask")
    if key_padding_mask is not None:
        check_tensor("key_padding_mask", key_padding_mask, floating=False)
        if tuple(key_padding_mask.shape) != (batch, n):
            raise ValueError(f"key_padding_mask must have shape (B, N)={(batch, n)}, "
                             f"got {tuple(key_padding_mask.shape)}")
        masks.append(key_padding_mask.view(batch, 1, 1, n).expand(batch, heads, n, n))
        names.append("key_padding_mask")
    for name, m in zip(names, masks):
        if m.dtype != torch.bool and not m.is_floating_point():
            raise TypeError(f"{name} must be bool or floating point, got dtype {m.dtype}")
    if not masks:
        return None
    if all(m.dtype == torch.bool for m in masks):
        keep = ~masks[0]
        return keep if len(masks) == 1 else keep & ~masks[1]
    additive = [m.to(dtype) if m.is_floating_point() else
                torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, float("-inf")) for m in masks]
    return additive[0] if len(additive) == 1 else additive[0] + additive[1]


def token_queries(layer: str, ndim: int, stride: int | tuple[int, ...],
                  padding: int | tuple[int, ...] | str | None) -> QueryGrid:
    """The query grid of a layer whose queries are single tokens (a 1x1 window), from a conv's stride and padding."""
    grid = QueryGrid.of_conv(ndim, stride, padding, radius=0)
    if grid.overhang:
        raise ValueError(f"{layer}'s queries are input tokens (a 1x1 window), so padding must be 0 or None, got "
                         f"padding={padding!r}: it would put queries on zero padding outside the image")
    return grid


class SelfAttention(NeighborAggregator):
    """Multi-head self-attention (Vaswani et al. 2017, Eqs. 1-2) over a token sequence.

    ``y = concat_h(softmax(Q_h K_h^T / sqrt(d)) V_h) W_o`` with ``Q = x W_q``, etc.: the
    ``SoftmaxAll`` selector (all keys, softmax of scaled dot products) and the
    ``WeightedMean`` combiner (values ``W_v``, output ``W_o``).

    Args:
        embed_dim, num_heads, bias, device, dtype: as ``torch.nn.MultiheadAttention``
            (``embed_dim`` divisible by ``num_heads``). ``operators.create("self_attention",
            in_channels=E)`` passes ``embed_dim=E`` (and ``num_heads=1`` unless given).
        out_channels: width of ``out_proj``'s output (default ``embed_dim``, MHA's; only then
            does an MHA state_dict load).
        path: ``'auto'`` | ``'fast'`` | ``'reference'``, see :class:`NeighborAggregator`.

    Forward:
        ``forward(x, attn_mask=None, key_padding_mask=None)`` with MHA's conventions (bool
        ``True`` = masked out, float = added to the scores); returns the output only (the
        attention weights are ``neighborhood(x)``).

    Shape:
        x: ``(B, N, E)`` -> ``(B, N, out_channels)``; attn_mask ``(N, N)`` or ``(B * num_heads, N, N)``;
        key_padding_mask ``(B, N)``.
    """

    #: MHA's token-major layout, not the channels-first one of the other layers
    layout: ClassVar[str] = "(B, N, E)"

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        embed_dim = check_int("embed_dim", embed_dim, minimum=1)
        num_heads = check_int("num_heads", num_heads, minimum=1)
        check_divisible("embed_dim", embed_dim, "num_heads", num_heads)
        factory = {"device": device, "dtype": dtype}
        out = embed_dim if out_channels is None else out_channels
        super().__init__(SoftmaxAll(embed_dim, embed_dim, num_heads, bias=bias, **factory),
                         WeightedMean(embed_dim, embed_dim, out, bias=bias, **factory), path=path)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        # torch.nn.MultiheadAttention's parameters, held here under its names (real parameters, so
        # state_dict values are their storage): in_proj_* packs [W_q; W_k; W_v], the parts read their rows
        q, k, v = self.selector.query, self.selector.key, self.combiner.value
        lift_packed([(q, "weight"), (k, "weight"), (v, "weight")], self, "in_proj_weight")
        lift_packed([(q, "bias"), (k, "bias"), (v, "bias")], self, "in_proj_bias")
        lift(self.combiner, "output", self, "out_proj")
        self.reset_parameters()

    def projections(self) -> list[nn.Linear]:
        """``W_q, W_k, W_v, W_o`` as linear maps."""
        return [self.selector.query, self.selector.key, self.combiner.value, self.combiner.output]

    def reset_parameters(self) -> None:
        # MultiheadAttention's: xavier-uniform over the packed (3E, E) in_proj, zero biases
        bound = math.sqrt(6.0 / (4 * self.embed_dim))
        *in_proj, out_proj = self.projections()
        for lin in in_proj:
            nn.init.uniform_(lin.weight, -bound, bound)
        out_proj.reset_parameters()
        for lin in self.projections():
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def _channels_first(self, x: Tensor, attn_mask: Tensor | None,
                        key_padding_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``(B, N, E)`` and MHA's masks -> ``(B, E, N)`` and the selector's mask."""
        check_tensor("x", x, ndim=3)
        check_channels("x", x, self.embed_dim, dim=2)
        mask = mha_mask(attn_mask, key_padding_mask, x.shape[0], self.num_heads, x.shape[1], x.dtype)
        return x.transpose(1, 2), mask

    def neighborhood(self, x: Tensor, attn_mask: Tensor | None = None,
                     key_padding_mask: Tensor | None = None) -> Neighborhood:
        """The attention weights as a Neighborhood, ``weight`` ``(B, H, N, N, 1)``; ``x``: ``(B, N, E)``."""
        x, mask = self._channels_first(x, attn_mask, key_padding_mask)
        return self.selector(x, mask=mask)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, key_padding_mask: Tensor | None = None, *,
                path: PathChoice | None = None) -> Tensor:
        x, mask = self._channels_first(x, attn_mask, key_padding_mask)
        return super().forward(x, path=path, mask=mask).transpose(1, 2)

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.combiner.out_channels != self.embed_dim:
            s += f", out_channels={self.combiner.out_channels}"
        if self.combiner.output.bias is None:
            s += ", bias=False"
        return s + (f", path={self.path!r}" if self.path != "auto" else "")


register(SelfAttention, family="attention", example=Example(dict(embed_dim=8, num_heads=2), (2, 5, 8)),
         num_heads=1)


class _SelfAttentionNd(NeighborAggregator):
    """What :class:`SelfAttention2d` and :class:`~operators.SelfAttention3d` share; ``spatial_dims`` picks the layout."""

    spatial_dims: ClassVar[int] = 2
    #: ``stride`` / ``padding`` are a convolution's: queries on its output grid (operators.swap reads this)
    strided_queries: ClassVar[bool] = True

    def __init__(self, in_channels: int, num_heads: int = 1, qk_channels: int | None = None,
                 value_channels: int | None = None, out_channels: int | None = None, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, identity_projections: bool = False, stride: int | tuple[int, ...] = 1,
                 padding: int | tuple[int, ...] | str | None = None) -> None:
        factory = {"device": device, "dtype": dtype}
        queries = token_queries(type(self).__name__, self.spatial_dims, stride, padding)
        learned = not check_bool("identity_projections", identity_projections)
        combiner = WeightedMean(in_channels, value_channels, out_channels, value=learned, output=learned, bias=bias,
                                **factory)
        check_divisible("value_channels", combiner.value_channels, "num_heads", num_heads)
        super().__init__(SoftmaxAll(in_channels, qk_channels, num_heads, bias=bias, project=learned, queries=queries,
                                    **factory), combiner, path=path)

    def forward(self, x: Tensor, mask: Tensor | None = None, *, path: PathChoice | None = None) -> Tensor:
        check_tensor("x", x, ndim=2 + self.spatial_dims)
        return super().forward(x, path=path, mask=mask)

    def extra_repr(self) -> str:
        s = f"{self.selector.extra_repr()}, out_channels={self.combiner.out_channels}"
        if self.selector.queries is not None:
            s += f", {self.selector.queries.describe()}"
        return s + (", identity_projections=True" if self.selector.query is None else "")


@register(family="attention", example=Example(dict(in_channels=4, num_heads=2), (2, 4, 5, 6)))
class SelfAttention2d(_SelfAttentionNd):
    """Multi-head self-attention over the pixels of an image (Vaswani et al. 2017, Eqs. 1-2).

    Every pixel is a token; ``SoftmaxAll`` + ``WeightedMean`` as in :class:`SelfAttention`,
    with the projections acting on channels (1x1 convolutions). No residual is added.

    Args:
        in_channels: C.
        num_heads: heads (divides ``qk_channels`` and ``value_channels``).
        qk_channels, value_channels, out_channels: default ``in_channels``.
        bias: whether the projections carry biases.
        identity_projections: no ``W_q, W_k, W_v, W_o`` at all: ``y = softmax(x x^T / sqrt(d)) x``
            per head, so the weights compare the raw input features (what an untrained
            layer should show in a figure); the channel arguments must then be ``None`` or C.
        stride, padding: a convolution's, for the output grid: queries are the pixels
            ``g * stride`` (keys stay every pixel), so with a 3x3 convolution's ``stride`` the
            output has its size (:class:`~neighborhoods.query_grid.QueryGrid`). A query is one
            token (a 1x1 window), so ``padding`` is 0 (or None); a larger one, which would put
            queries on padding outside the image, is an error.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H_out, W_out)``, ``H_out = floor((H - 1) / stride) + 1``; ``mask`` (bool ``True`` = may
        attend, or additive float): ``(N, N)``, ``(B, N, N)`` or ``(B, H, N, N)``, N = H W.
    """

    spatial_dims = 2
