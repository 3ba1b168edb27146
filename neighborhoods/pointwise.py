"""A linear map over the channel axis of a channels-first tensor."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ChannelLinear(nn.Linear):
    """``nn.Linear`` applied to dim 1 of ``(B, C, *spatial)``: a 1x1 convolution with a Linear's weight.

    Projections in selectors and combiners act on channels-first input (so they can be
    swapped for any module that does, e.g. a 1x1 conv followed by pooling), while keeping
    ``nn.Linear``'s ``(out, in)`` weight so that, for instance, ``nn.MultiheadAttention``'s
    weights load unchanged.

    Shape:
        x: ``(B, in_features, *spatial)`` -> ``(B, out_features, *spatial)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)
