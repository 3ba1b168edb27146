"""Whether a module's call can be bypassed: routes that run a module's weights directly skip its hooks."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.module import _global_backward_hooks, _global_forward_hooks, _global_forward_pre_hooks


def hooked(m: nn.Module) -> bool:
    """Whether calling ``m`` would run a hook: its own forward, pre-forward or backward hooks, or global ones.

    A fast route that computes with ``m``'s parameters instead of calling ``m`` (N3's shared first
    convolution, the combiner's split projection) is taken only when this is ``False``.
    """
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                or getattr(m, "_backward_pre_hooks", None)
                or _global_forward_hooks or _global_forward_pre_hooks or _global_backward_hooks)
