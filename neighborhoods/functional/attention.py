"""``F.scaled_dot_product_attention`` with an exact second derivative.

On CPU torch runs SDPA with a fused kernel whose backward has no derivative of its own:
``create_graph=True`` through it fails at the second backward with "derivative for
aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented". Here the
first derivative is still the fused kernel's, and a second one is taken through the
definition ``softmax(scale * Q K^T + mask) V`` (Vaswani et al. 2017, Eq. 1), the same
function, so higher derivatives are exact.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .transforms import under_transform


def attention_definition(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float | None) -> Tensor:
    """``softmax(scale * Q K^T + mask) V`` in plain torch ops; a row with every key masked out gives 0, as SDPA does."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
    empty = torch.isneginf(s).all(-1, keepdim=True)
    return s.masked_fill(empty, 0.0).softmax(-1).masked_fill(empty, 0.0) @ v


class _Attention(torch.autograd.Function):
    """Forward and first backward: the fused kernel (its graph kept inside); a second derivative: the definition."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float | None) -> Tensor:
        # old-style (ctx in forward): the fused graph is kept on ctx, not returned; the torch.func
        # transforms, which need setup_context, never reach this Function (see attention())
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]
            out = F.scaled_dot_product_attention(*leaves, attn_mask=mask, scale=scale)
        ctx.inner = (out, leaves)
        ctx.mask, ctx.scale = mask, scale
        ctx.save_for_backward(q, k, v)
        return out.detach()

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        out, leaves = ctx.inner
        if torch.is_grad_enabled():  # create_graph: through the definition, differentiable again
            q, k, v = ctx.saved_tensors
            inputs = [t for t, needs in zip((q, k, v), ctx.needs_input_grad[:3]) if needs]
            y = attention_definition(q, k, v, ctx.mask, ctx.scale)
            grads = iter(torch.autograd.grad(y, inputs, grad_out, create_graph=True))
        else:
            # retain_graph: the outer graph may be retained and run again; the inner one goes with ctx
            grads = iter(torch.autograd.grad(out, leaves, grad_out, retain_graph=True))
            grads = iter(g for g, needs in zip(grads, ctx.needs_input_grad[:3]) if needs)
        return *(next(grads) if needs else None for needs in ctx.needs_input_grad[:3]), None, None


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, scale: float | None = None) -> Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)``, twice differentiable.

    Shape: ``q (*lead, Nq, d)``, ``k (*lead, Nk, d)``, ``v (*lead, Nk, e)`` -> ``(*lead, Nq, e)``.
    Without autograd, under a transform (:mod:`.transforms`) or with a mask that needs a
    gradient, this is SDPA itself.
    """
    needs = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if not needs or under_transform(q, k, v) or (mask is not None and mask.requires_grad):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return _Attention.apply(q, k, v, mask, scale)
