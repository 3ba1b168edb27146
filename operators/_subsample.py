"""The non-local block's ``sub_sample``: a 2x max-pool that leaves an axis of length 1 alone.

Wang et al. 2018 (Sec. 4.1) max-pool ``phi`` and ``g`` by 2 on every spatial axis, with
floor rounding, as ``nn.MaxPool2d(2)`` does. On an axis of length 1 that pooling has no
window at all (torch raises "Output size is too small"), so a 1x1, 1xW or Hx1 image, or a
sequence of one token, could not pass through the block. Here such an axis is not pooled
(window 1 on it): its single row or column is already the coarsest summary of itself, and
every other axis is pooled exactly as before, so all inputs the block took keep their
output. Padding instead (``ceil_mode``) would also admit length 1 but changes the keys of
every odd-length axis (7 -> 4 instead of 3), which the reference implementation's weights
do not expect.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def sub_sample_window(spatial_shape: tuple[int, ...], factor: int | tuple[int, ...] = 2) -> tuple[int, ...]:
    """The pooling window per axis: ``factor`` (one, or one per axis), or 1 on an axis shorter than it."""
    factors = factor if isinstance(factor, tuple) else (factor,) * len(spatial_shape)
    return tuple(f if n >= f else 1 for n, f in zip(spatial_shape, factors))


class SubSample(nn.Module):
    """Max-pool by 2 per spatial axis, floor rounding, axes of length 1 kept (see the module docstring).

    Shape:
        x: ``(B, C, *spatial)`` -> ``(B, C, *pooled)``, ``pooled[a] = spatial[a] // 2`` where
        ``spatial[a] >= 2``, else ``spatial[a]``.
    """

    def __init__(self, spatial_dims: int, factor: int | tuple[int, ...] = 2) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        #: the window per axis: 2, or Wang et al.'s video model's (1, 2, 2) (space only, time kept)
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        window = sub_sample_window(tuple(x.shape[2:]), self.factor)
        return _POOL[self.spatial_dims](x, window, window)

    def extra_repr(self) -> str:
        return f"kernel_size={self.factor}, stride={self.factor}, axes shorter than the window not pooled"
