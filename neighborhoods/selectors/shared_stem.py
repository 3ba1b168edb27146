"""Two networks that open with convolutions of the same shape on the same input, run as one convolution.

N3's embedding and temperature networks (Ploetz & Roth 2018, Sec. 4) both start with a 3x3
convolution of the block's input. Stacking their weights along the output channels gives one
convolution whose outputs, split, are the two networks' first layers (each output channel is
its own dot product over the same input window), so the rest of each network runs unchanged;
autograd splits the weight gradient back. The later convolutions of both networks run as one
dense matrix product each where the map is tiny (:mod:`..functional.dense_conv`). On small maps a convolution's cost is mostly per
call: on a 2-core AMD EPYC, 1 thread, B 64, 4x4 maps, two C -> 8 convolutions forward +
backward took 636 / 983 / 1759 us at C = 8 / 32 / 64, one C -> 16 convolution 437 / 594 /
1018 us. The values agree with the separate convolutions up to round-off (the backend may
block the wider product differently).

Only plain ``nn.Conv2d`` first layers with identical hyperparameters, both with or both
without bias, zero padding, and no hooks, their own or global (the stacked call does not call the modules) are
shared; anything else runs the two networks as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional.dense_conv import dense_conv2d, dense_conv_takes
from ..hooks import hooked

_SAME = ("in_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode")


def shareable(a: nn.Module | None, b: nn.Module | None) -> bool:
    """Whether :func:`run_both` may share the first layers of ``a`` and ``b`` (module docstring)."""
    if not (isinstance(a, nn.Sequential) and isinstance(b, nn.Sequential) and len(a) and len(b)):
        return False
    first_a, first_b = a[0], b[0]
    return (type(first_a) is nn.Conv2d and type(first_b) is nn.Conv2d and not hooked(first_a) and not hooked(first_b)
            and all(getattr(first_a, name) == getattr(first_b, name) for name in _SAME)
            and first_a.padding_mode == "zeros" and isinstance(first_a.padding, tuple)
            and (first_a.bias is None) == (first_b.bias is None)
            and first_a.weight.dtype == first_b.weight.dtype and first_a.weight.device == first_b.weight.device)


def run_both(a: nn.Sequential, b: nn.Sequential, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(a(x), b(x))`` with the two first convolutions as one (callers check :func:`shareable`)."""
    conv_a, conv_b = a[0], b[0]
    weight = torch.cat([conv_a.weight, conv_b.weight])
    bias = None if conv_a.bias is None else torch.cat([conv_a.bias, conv_b.bias])
    both = F.conv2d(x, weight, bias, conv_a.stride, conv_a.padding, conv_a.dilation, conv_a.groups)
    ya, yb = both.split([conv_a.out_channels, conv_b.out_channels], dim=1)
    return _rest(a, ya), _rest(b, yb)


def _rest(net: nn.Sequential, y: Tensor) -> Tensor:
    """``net[1:](y)``; its convolutions on tiny maps as one dense product each (:mod:`..functional.dense_conv`)."""
    for layer in list(net)[1:]:
        y = dense_conv2d(layer, y) if dense_conv_takes(layer, y) else layer(y)
    return y
