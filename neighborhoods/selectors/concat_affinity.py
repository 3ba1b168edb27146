"""The concatenation non-local selector: ``f(x_i, x_j) = ReLU(w_f^T [theta(x_i), phi(x_j)])``."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ..checks import check_int
from ..query_grid import QueryGrid
from .dense_affinity import DenseAffinity, check_mask


class ConcatAffinity(DenseAffinity):
    """All keys, weighted by ``A_ij = ReLU(w_f^T [q_i, k_j]) / N_k`` (Wang et al. 2018, Sec. 3.2, Eq. 7).

    ``w_f`` (``concat_project``, a ``(1, 2 D)`` linear map without bias) splits into a query
    half and a key half, so ``w_f^T [q_i, k_j] = a_i + b_j`` is a sum, not a dot product:
    no native attention kernel computes it and the aggregator takes the reference path.

    Args:
        channels: D, the channels of ``query(x)`` and ``key(x)``.
        query, key: channels-first modules (``theta``, ``phi``), as in :class:`DenseAffinity`.

    Shape:
        x: ``(B, C, *spatial)`` -> Neighborhood with ``weight`` ``(B, 1, Nq, Nk, 1)``.
    """

    def __init__(self, channels: int, query: nn.Module | None = None, key: nn.Module | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 queries: QueryGrid | None = None) -> None:
        super().__init__(query, key, kernel="relu", normalize="mean", queries=queries)
        self.channels = check_int("channels", channels, minimum=1)
        self.concat_project = nn.Linear(2 * self.channels, 1, bias=False, device=device, dtype=dtype)

    def affinity(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        q, k = self.project(x)  # (b, 1, n, d)
        if q.shape[-1] != self.channels:
            raise ValueError(f"query/key modules must give {self.channels} channels, got {q.shape[-1]}")
        w_q, w_k = self.concat_project.weight[0].split(self.channels)
        m = torch.relu(rearrange(q @ w_q, "b h q -> b h q 1") + rearrange(k @ w_k, "b h n -> b h 1 n"))
        mask = check_mask(mask, x.shape[0], 1, q.shape[-2], k.shape[-2])
        if mask is not None:
            if mask.dtype != torch.bool:
                raise TypeError(f"the concatenation affinity takes a bool mask only, got dtype {mask.dtype}")
            m = m.masked_fill(~mask, 0.0)
        return m / m.shape[-1]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, normalize='mean'"
