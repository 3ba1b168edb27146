"""Gathering neighbour features by index."""

from __future__ import annotations

import torch
from torch import Tensor


def gather(values: Tensor, index: Tensor, valid: Tensor | None = None) -> Tensor:
    """Rows of ``values`` picked by ``index``, zero where ``valid`` is False.

    Shape:
        values: ``(*lead, Nk, C)``; index: ``(Nq, M)`` (shared by every leading entry) or
        ``(*lead, Nq, M)``; valid: broadcastable to ``index``  ->  ``(*lead, Nq, M, C)``.
    """
    if index.dtype != torch.long:
        raise TypeError(f"index must be a torch.long tensor, got dtype {index.dtype}")
    lead = values.shape[:-2]
    if index.ndim == 2:
        out = values[..., index, :]
    else:
        if index.shape[:-2] != lead:
            raise ValueError(f"index leading shape {tuple(index.shape[:-2])} must match values' "
                             f"{tuple(lead)} (values {tuple(values.shape)}, index {tuple(index.shape)})")
        nq, m = index.shape[-2:]
        c = values.shape[-1]
        flat_values = values.reshape(-1, values.shape[-2], c)
        flat_index = index.reshape(flat_values.shape[0], nq * m, 1).expand(-1, -1, c)
        out = flat_values.gather(1, flat_index).reshape(*lead, nq, m, c)
    if valid is not None:
        if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
            raise TypeError(f"valid must be a bool tensor (True = a real candidate), got "
                            f"{getattr(valid, 'dtype', type(valid).__name__)}")
        out = torch.where(valid.unsqueeze(-1), out, out.new_zeros(()))
    return out
