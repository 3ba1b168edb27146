"""Output normalisations of the non-local family, and softmaxes over positions and channels.

The non-local family adds its output to the input (``Y = X + norm(F)``) and starts with the
last affine map at zero so that a freshly inserted block is the identity: Wang et al. 2018
(Sec. 4.1) zero the BatchNorm scale after ``W``; CGNL (Yue et al. 2018) zeroes a GroupNorm;
CCNet (Huang et al. 2019) multiplies by a scalar ``gamma`` initialised to 0. That zero start
belongs to the residual, so it lives with it, in
:meth:`~neighborhoods.combiners.GraphFilter.start_as_identity`; the modules here are plain
(a BatchNorm's scale starts at 1, a :class:`Scale` at 1) and the combiner zeroes whichever
is last.

All modules here act on channels-first tensors ``(B, C, *spatial)`` of any number of
spatial axes, so one class serves the 1-D and 2-D blocks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import check_channels, check_tensor


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over dim 1 of ``(B, C, *spatial)``, for any number of spatial axes.

    Same parameters and buffers as ``nn.BatchNorm2d`` (``weight, bias, running_mean,
    running_var, num_batches_tracked``); the spatial axes are flattened so that one
    module handles sequences and images.

    Shape:
        x: ``(B, C, *spatial)`` -> same.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        check_tensor("x", x, ndim=(3, 4, 5))
        check_channels("x", x, self.num_features)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        return super().forward(x.flatten(2)).reshape(x.shape)


class Scale(nn.Module):
    """``gamma * x`` with one learned scalar ``gamma`` (CCNet's output scale, Sec. 3.2).

    Shape:
        x: any -> same.
    """

    def __init__(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.empty((), device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.gamma)

    def forward(self, x: Tensor) -> Tensor:
        return self.gamma * x


class SpatialSoftmax(nn.Module):
    """Softmax of every channel over all positions: each channel becomes an attention map.

    The gathering attention of the double-attention block (Chen et al. 2018, Eq. 3).

    Shape:
        x: ``(B, C, *spatial)`` -> same, summing to 1 over ``spatial`` for every ``(b, c)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, ndim=(3, 4, 5))
        return x.flatten(2).softmax(-1).reshape(x.shape)


class ChannelSoftmax(nn.Module):
    """Softmax over the channel axis at every position (the distributing attention of A^2-Nets).

    Shape:
        x: ``(B, C, *spatial)`` -> same, summing to 1 over ``C`` at every position.
    """

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, ndim=(3, 4, 5))
        return x.softmax(1)

