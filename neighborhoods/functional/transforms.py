"""Is this call being traced or transformed? The kernels that cannot be, switch to a form that can.

A few kernels take data-dependent Python decisions for speed in eager mode (which rows of a
top-k need the exact tie rule, which key band a block of queries reads) or are custom
``torch.autograd.Function`` s with a blocked, recomputing backward. Under
``torch.compile`` / ``torch.export`` (Dynamo), ``torch.jit.trace`` and ``torch.func``'s
transforms (``vmap``, ``grad``: their tensors are wrapped) such decisions cannot be taken
on values, so those kernels run their branch-free, plain-torch form instead: the same
function (equal up to round-off), differentiable to any order.
"""

from __future__ import annotations

import torch
from torch import Tensor


def functorch_wrapped(*tensors: Tensor | None) -> bool:
    """Whether any tensor is wrapped by a ``torch.func`` transform (``vmap``'s batching, ``grad``'s tracking)."""
    return any(t is not None and torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def under_transform(*tensors: Tensor | None) -> bool:
    """Whether values must not steer Python control flow: compiling, exporting, jit-tracing or a ``torch.func`` transform."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or functorch_wrapped(*tensors)
