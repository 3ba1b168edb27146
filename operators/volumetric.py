"""The zoo on video and volumes, ``(B, C, T, H, W)``: 3-D twins of its layers.

Each is the configuration of its 2-D twin with three spatial axes; the ``T H W`` grid's cells
are the tokens, in raster order. ``Conv3d``: a fixed 3-D window + ``Conv1D`` (``F.conv3d``
fast path; a ``torch.nn.Conv3d`` state_dict loads unchanged). ``ConvNN3d``: the k nearest of
all ``T H W`` tokens (``HardKNN`` with three axes); with ``'location'`` similarity and
k = (2r+1)^3 its k nearest positions are a (2r+1)-cube, so it is ``Conv3d(kernel_size=2r+1,
padding='same')`` (k = 27: 3x3x3). ``NonLocalBlock3d``: Wang et al. 2018's block for video,
whose ``sub_sample`` max-pools keys and values over space only, ``(1, 2, 2)``, as their video
model does (Sec. 4.1). ``SelfAttention3d``: every token of the video attends to every other
(``SoftmaxAll`` + ``WeightedMean``), the same function as :class:`SelfAttention2d` on the
``(T, H W)`` image with the same weights. ``NeighborhoodAttention3d`` lives with its 1-D and
2-D twins.
"""

from __future__ import annotations

from .attention import _SelfAttentionNd
from .conv import SAME_3X3, _ConvNd
from .convnn import _ConvNNNd
from .non_local import _NonLocalBlockNd
from .registry import Example, register


class Conv3d(_ConvNd):
    """``torch.nn.Conv3d`` as a fixed-window NeighborAggregator.

    Same constructor arguments as torch's; the registry entry ``conv3d`` adds the defaults
    ``kernel_size=3, padding='same'``, so ``operators.create("conv3d", in_channels=C)`` is complete.

    Shape:
        x: ``(B, C, T, H, W)`` -> ``(B, C_out, T, H, W after the window)``.
    """

    spatial_dims = 3


class ConvNN3d(_ConvNNNd):
    """ConvNN over (B, C, T, H, W): every token of the video aggregates its k nearest tokens.

    Arguments as :class:`~operators.ConvNN2d` (Algorithm 1 of the ConvNN poster, with the
    ``T H W`` cells as tokens); ``'spatial'`` sampling takes ``samples`` per axis, ``samples^3``
    candidates. With ``similarity='location'`` the default candidate padding is
    r = ceil((k^(1/3) - 1) / 2), and k = (2r+1)^3 makes the layer exactly
    ``Conv3d(kernel_size=2r+1, padding='same')`` (with a stride: the strided ``Conv3d``).

    Shape:
        x: ``(B, C, T, H, W)`` -> ``(B, C_out, T_out, H_out, W_out)`` (the input's own size at stride 1);
        weight ``(C_out, C_in, k)``, bias ``(C_out,)``.
    """

    spatial_dims = 3


class NonLocalBlock3d(_NonLocalBlockNd):
    """The non-local block on a video (Wang et al. 2018, Eqs. 1-6, Sec. 4.1); see :mod:`operators.non_local`.

    Arguments as :class:`NonLocalBlock2d`; ``sub_sample`` max-pools ``phi`` and ``g`` by
    ``(1, 2, 2)``: space, not time.

    Shape:
        x: ``(B, C, T, H, W)`` -> ``(B, out_channels, T, H, W)``.
    """

    spatial_dims = 3


class SelfAttention3d(_SelfAttentionNd):
    """Multi-head self-attention over the ``T H W`` tokens of a video or volume (Vaswani et al. 2017, Eqs. 1-2).

    ``y_i = W_o concat_h sum_j softmax_j(q_i . k_j / sqrt(d)) W_v x_j`` over all ``N = T H W``
    tokens; arguments as :class:`SelfAttention2d` (``stride`` per axis, ``padding`` 0 or None).
    Holds :class:`NeighborhoodAttention3d`'s parameters under the same names.

    Shape:
        x: ``(B, C, T, H, W)`` -> ``(B, out_channels, T_out, H_out, W_out)``; ``mask``: ``(N, N)``,
        ``(B, N, N)`` or ``(B, H, N, N)``.
    """

    spatial_dims = 3


register(Conv3d, family="convolution", example=Example(dict(in_channels=4, out_channels=6), (2, 4, 3, 4, 5)),
         **SAME_3X3)
_EX3D = dict(in_channels=4, out_channels=6, k=5)
register(ConvNN3d, family="convnn", example=Example(_EX3D, (2, 4, 3, 4, 4)), aliases=["convnn3d"])
register(ConvNN3d, family="convnn", example=Example(dict(_EX3D, k=27), (2, 4, 3, 4, 4)), variant="location",
         aliases=["convnn3d_location"], similarity="location")
register(NonLocalBlock3d, family="nonlocal", example=Example(dict(in_channels=4), (2, 4, 3, 4, 4)))
register(SelfAttention3d, family="attention", example=Example(dict(in_channels=4, num_heads=2), (2, 4, 3, 4, 5)))
