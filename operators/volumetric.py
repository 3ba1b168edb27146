"""The zoo on video and volumes, ``(B, C, T, H, W)``: 3-D twins of its layers.

Each is the configuration of its 2-D twin with three spatial axes. ``Conv3d``: a fixed 3-D
window + ``Conv1D`` (``F.conv3d`` fast path; a ``torch.nn.Conv3d`` state_dict loads
unchanged). ``NonLocalBlock3d``: Wang et al. 2018's block for video, whose ``sub_sample``
max-pools keys and values over space only, ``(1, 2, 2)``, as their video model does (Sec. 4.1).
``NeighborhoodAttention3d`` lives with its 1-D and 2-D twins.
"""

from __future__ import annotations

from .conv import SAME_3X3, _ConvNd
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


class NonLocalBlock3d(_NonLocalBlockNd):
    """The non-local block on a video (Wang et al. 2018, Eqs. 1-6, Sec. 4.1); see :mod:`operators.non_local`.

    Arguments as :class:`NonLocalBlock2d`; ``sub_sample`` max-pools ``phi`` and ``g`` by
    ``(1, 2, 2)``: space, not time.

    Shape:
        x: ``(B, C, T, H, W)`` -> ``(B, out_channels, T, H, W)``.
    """

    spatial_dims = 3


register(Conv3d, family="convolution", example=Example(dict(in_channels=4, out_channels=6), (2, 4, 3, 4, 5)),
         **SAME_3X3)
register(NonLocalBlock3d, family="nonlocal", example=Example(dict(in_channels=4), (2, 4, 3, 4, 4)))
