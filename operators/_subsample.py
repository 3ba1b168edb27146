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


def sub_sample_window(spatial_shape: tuple[int, ...], factor: int = 2) -> tuple[int, ...]:
    """The pooling window per axis: ``factor``, or 1 on an axis shorter than ``factor``."""
    return tuple(factor if n >= factor else 1 for n in spatial_shape)


class SubSample(nn.Module):
    """Max-pool by 2 per spatial axis, floor rounding, axes of length 1 kept (see the module docstring).

    Shape:
        x: ``(B, C, *spatial)`` -> ``(B, C, *pooled)``, ``pooled[a] = spatial[a] // 2`` where
        ``spatial[a] >= 2``, else ``spatial[a]``.
    """

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims

    def forward(self, x: Tensor) -> Tensor:
        window = sub_sample_window(tuple(x.shape[2:]))
        return _POOL[self.spatial_dims](x, window, window)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2, axes of length 1 not pooled"
