"""Softmax and log-softmax over the last axis, fast when that axis is short.

torch 2.13's CPU kernels for a softmax over the *last* axis run about 10x slower when the
axis holds fewer than 16 numbers (measured on a 2-core AMD EPYC, float32, one thread:
``log_softmax`` of ``(25088, 8)`` 3.0 ms, of ``(12544, 16)`` 0.29 ms). The kernel for an
inner axis has no such cliff, so a short last axis is moved in front of the next-to-last,
made contiguous, reduced there and moved back: the same values (up to round-off in the
sum) and the same autograd graph shape. N3's continuous k-NN takes softmaxes over its M
candidates (8 in the digits ablation), the neighbourhood window over its k x k taps.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

#: last-axis lengths below this take the transposed route on CPU
SHORT_AXIS = 16


def _last_axis(x: Tensor, op: Callable[[Tensor, int], Tensor]) -> Tensor:
    """``op(x, -1)``, or on CPU with a short last axis ``op`` over the transposed copy (module docstring)."""
    if x.device.type == "cpu" and x.ndim >= 2 and x.shape[-1] < SHORT_AXIS and x.shape[-2] > 1:
        return op(x.transpose(-1, -2).contiguous(), -2).transpose(-1, -2)
    return op(x, -1)


def softmax_last(x: Tensor) -> Tensor:
    """``x.softmax(-1)``, through the inner-axis kernel when the last axis is short (module docstring)."""
    return _last_axis(x, Tensor.softmax)


def log_softmax_last(x: Tensor) -> Tensor:
    """``x.log_softmax(-1)``, through the inner-axis kernel when the last axis is short (module docstring)."""
    return _last_axis(x, Tensor.log_softmax)
