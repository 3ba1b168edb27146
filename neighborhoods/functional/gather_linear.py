"""A linear map of gathered rows, ``y = bias + W [v_{i(q,1)}; ...; v_{i(q,k)}]``, a block of queries at a time.

ConvNN's Conv1d over the k selected neighbours (kernel = stride = k, Algorithm 1 of the ConvNN
poster) is this map on the tokens. Gathering all ``(B Nq, k C)`` rows first writes a tensor k
times the input's size (19 MiB at 32x32, B 8, C 64, k 9) into freshly mapped memory: on CPU the
gather then costs mostly first-touch page faults (5.3 ms in the layer against 0.7 ms for the same
``index_select`` into reused memory, 2-core AMD EPYC) and autograd keeps the whole tensor for
the weight's gradient. Here the rows are gathered into one cache-sized buffer per block of
queries and multiplied at once; the backward gathers each block again instead of saving it. A
second derivative (``create_graph=True``) differentiates the direct form instead.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .stages import stage

#: queries per block: the gathered block (``rows x k C``) stays a few MiB
BLOCK_ROWS = 1024


def _blocks(queries: int) -> range:
    return range(0, queries, BLOCK_ROWS)


class _GatherLinear(torch.autograd.Function):
    @staticmethod
    def forward(values: Tensor, index: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        k = weight.shape[1] // values.shape[1]
        queries = index.numel() // k
        out = values.new_empty(queries, weight.shape[0])
        buf = values.new_empty(min(queries, BLOCK_ROWS) * k, values.shape[1])
        for q0 in _blocks(queries):
            q1 = min(queries, q0 + BLOCK_ROWS)
            with stage("gathering"):
                rows = torch.index_select(values, 0, index[q0 * k:q1 * k], out=buf[: (q1 - q0) * k])
                rows = rows.view(q1 - q0, weight.shape[1])
            with stage("combining"):
                if bias is None:
                    torch.mm(rows, weight.t(), out=out[q0:q1])
                else:
                    torch.addmm(bias, rows, weight.t(), out=out[q0:q1])
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        values, index, weight, bias = inputs
        ctx.save_for_backward(values, index, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        values, index, weight = ctx.saved_tensors
        need_values, _, need_weight, need_bias = ctx.needs_input_grad
        grad_bias = grad.sum(0) if need_bias and ctx.has_bias else None
        c = values.shape[1]
        if torch.is_grad_enabled():  # create_graph: differentiable direct forms
            grad_values = grad_weight = None
            if need_values:
                grad_values = values.new_zeros(values.shape).index_add(0, index, (grad @ weight).view(-1, c))
            if need_weight:
                grad_weight = grad.t() @ values.index_select(0, index).view(grad.shape[0], weight.shape[1])
            return grad_values, None, grad_weight, grad_bias
        k = weight.shape[1] // c
        grad_values = values.new_zeros(values.shape) if need_values else None
        grad_weight = weight.new_zeros(weight.shape) if need_weight else None
        most = min(grad.shape[0], BLOCK_ROWS)
        buf = values.new_empty(most * k, c) if need_weight else None
        # the rows' gradients, one buffer for every block: a fresh 2 MiB product per block cost ~5% of the
        # backward (B 8, 32x32, k 9: 15.4 -> 14.6 ms forward + backward, 2-core AMD EPYC)
        grad_rows = values.new_empty(most, weight.shape[1]) if need_values else None
        for q0 in _blocks(grad.shape[0]):
            q1 = min(grad.shape[0], q0 + BLOCK_ROWS)
            g = grad[q0:q1]
            if need_weight:
                rows = torch.index_select(values, 0, index[q0 * k:q1 * k], out=buf[: (q1 - q0) * k])
                grad_weight.addmm_(g.t(), rows.view(q1 - q0, weight.shape[1]))
            if need_values:
                rows_grad = torch.mm(g, weight, out=grad_rows[: q1 - q0])
                grad_values.index_add_(0, index[q0 * k:q1 * k], rows_grad.view(-1, c))
        return grad_values, None, grad_weight, grad_bias


def gather_linear(values: Tensor, index: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(values[index].view(Nq, k C), weight, bias)`` without holding the gathered rows.

    Args:
        values: ``(N, C)`` rows.
        index: ``(Nq k,)`` long, the k rows of each query in turn.
        weight: ``(C_out, k C)``; bias: ``(C_out,)`` or ``None``.

    The same function as the direct form (round-off apart: the products run per block of
    :data:`BLOCK_ROWS` queries); differentiable to any order.

    Shape:
        ``-> (Nq, C_out)``.
    """
    if values.ndim != 2 or index.ndim != 1 or weight.ndim != 2 or weight.shape[1] % values.shape[1]:
        raise ValueError(f"gather_linear needs values (N, C), index (Nq k,), weight (C_out, k C), got values "
                         f"{tuple(values.shape)}, index {tuple(index.shape)}, weight {tuple(weight.shape)}")
    k = weight.shape[1] // values.shape[1]
    if index.numel() % k:
        raise ValueError(f"index must hold k = {k} rows per query, got {index.numel()} entries")
    return _GatherLinear.apply(values, index, weight, bias)


def gather_linear_direct(values: Tensor, index: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The direct form of :func:`gather_linear` (gather every row, then one ``F.linear``): the reference."""
    queries = index.numel() * values.shape[1] // weight.shape[1]
    return F.linear(values.index_select(0, index).view(queries, weight.shape[1]), weight, bias)
