"""A linear map over the channel axis of a channels-first tensor: the zoo's one 1x1 projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_divisible, check_int
from .lifting import Liftable


#: inputs with at least this many positions per sample are mapped by one (C_out, C_in) x (C_in, positions)
#: product per sample; smaller ones by one F.linear over channels-last rows (a copy in, a strided
#: result out), which batches tiny products better. Forward+backward on a 2-core AMD EPYC, 1 thread,
#: F.linear -> per sample: (64, 32 -> 8, 4x4) 181 -> 133 us, (64, 256 -> 64, 4x4) 1355 -> 1837 us,
#: (64, 64 -> 16, 8x8) 628 -> 478 us, (8, 640 -> 64, 32x32) 46.3 -> 26.3 ms.
BATCHED_MIN_POSITIONS = 64


class ChannelLinear(Liftable, nn.Linear):
    """``nn.Linear`` applied to dim 1 of ``(B, C, *spatial)``: a 1x1 convolution with a Linear's weight.

    Projections in selectors and combiners act on channels-first input (so they can be
    swapped for any module that does, e.g. a 1x1 conv followed by pooling), while keeping
    ``nn.Linear``'s ``(out, in)`` weight so that, for instance, ``nn.MultiheadAttention``'s
    weights load unchanged. Every learned 1x1 map the zoo adds (attention's projections,
    a residual block's projection shortcut, N3's projection of its concatenation, CGNL's
    grouped ``W``) is one of these.

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear``.
        groups: split the channels into ``groups`` blocks mapped independently, as a grouped
            1x1 convolution; the weight is then ``(out_features, in_features / groups)``.

    Shape:
        x: ``(B, in_features, *spatial)`` -> ``(B, out_features, *spatial)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 groups: int = 1) -> None:
        groups = check_int("groups", groups, minimum=1)
        check_divisible("in_features", check_int("in_features", in_features, minimum=1), "groups", groups)
        check_divisible("out_features", check_int("out_features", out_features, minimum=1), "groups", groups)
        # nn.Linear's initialisation on the (out, in / groups) weight is a grouped conv's: same fan-in
        super().__init__(in_features // groups, out_features, bias, device, dtype)
        self.in_features, self.groups = in_features, groups

    def forward(self, x: Tensor) -> Tensor:
        if self.groups == 1:
            if x.ndim >= 3 and x.shape[2:].numel() >= BATCHED_MIN_POSITIONS:
                # one product per sample on the channels-first layout: no channels-last copy in or out
                flat = x.flatten(2)
                y = (torch.matmul(self.weight, flat) if self.bias is None
                     else torch.baddbmm(self.bias.unsqueeze(-1), self.weight.expand(x.shape[0], -1, -1), flat))
                return y.view(x.shape[0], self.out_features, *x.shape[2:])
            return F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)
        y = F.conv1d(x.flatten(2), self.weight.unsqueeze(-1), self.bias, groups=self.groups)
        return y.view(x.shape[0], self.out_features, *x.shape[2:])

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", groups={self.groups}" if self.groups != 1 else "")
