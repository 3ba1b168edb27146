"""ConvNN's combiner: one weight matrix per slot (a convolution over the slot axis)."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from ..checks import check_divisible, check_int, check_int_tuple, check_like
from ..functional.stages import stage
from ..neighborhood import Neighborhood
from ..tokens import from_tokens, to_tokens
from .base import Combiner


class Conv1D(Combiner):
    """``y_q = bias + sum_s W[:, :, s] v_{q,s}``: a weight matrix per slot.

    This is step 4 of the ConvNN poster's Algorithm 1 (``Conv1D(V', kernel_size=k,
    stride=k)`` over the gathered neighbours) and, with a fixed window as selector, exactly a
    convolution. The weight keeps the layout of the conv it generalises:
    ``(C_out, C_in / groups, *kernel_shape)`` with ``prod(kernel_shape) = S`` slots in
    row-major order, so a ``torch.nn.Conv2d`` weight drops in unchanged.

    Args:
        in_channels, out_channels, groups, bias, device, dtype: as ``torch.nn.Conv1d``.
        kernel_size: S (an int) or the kernel's shape (a tuple), e.g. ``(3, 3)`` for 9 slots.

    Shape:
        x: ``(B, C_in, *spatial)``, nbhd with S slots -> ``(B, C_out, *nbhd.query_shape)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...],
                 groups: int = 1, bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.groups = check_int("groups", groups, minimum=1)
        check_divisible("in_channels", in_channels, "groups", groups)
        check_divisible("out_channels", out_channels, "groups", groups)
        ndim = 1 if not isinstance(kernel_size, (tuple, list)) else len(kernel_size)
        self.kernel_size = check_int_tuple("kernel_size", kernel_size, ndim, minimum=1)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    @property
    def num_slots(self) -> int:
        return math.prod(self.kernel_size)

    def reset_parameters(self) -> None:
        # torch.nn.Conv*'s initialisation, so a fresh layer is statistically a fresh conv
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def check_input(self, x: Tensor) -> None:
        """``x`` has ``in_channels`` channels and the weight's dtype and device."""
        super().check_input(x)
        check_like("x", x, self.weight, "weight")

    def forward(self, x: Tensor, nbhd: Neighborhood) -> Tensor:
        self.check_input(x)
        if nbhd.num_slots != self.num_slots:
            raise ValueError(f"the neighbourhood has {nbhd.num_slots} slots but the weight has "
                             f"kernel_size={self.kernel_size} ({self.num_slots} slots)")
        v = nbhd.aggregate(to_tokens(x))  # (b, q, s, c); labels its own gathering
        with stage("combining"):  # a weight matrix per slot
            v = rearrange(v, "b q s (g c) -> b q g c s", g=self.groups)
            w = rearrange(self.weight.flatten(2), "(g o) c s -> g o c s", g=self.groups)
            y = torch.einsum("bqgcs,gocs->bqgo", v, w).flatten(2)
            if self.bias is not None:
                y = y + self.bias
        return from_tokens(y, nbhd.query_shape)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
