"""The one representation of "which keys does each query draw on, and with what weight".

Axis legend: ``b`` batch, ``h`` heads, ``q`` queries (Nq), ``n`` keys (Nk), ``m`` candidates
per query (M), ``s`` slots (S), ``c`` channels.

Every selector in the zoo returns a :class:`Neighborhood`:

=====================  ==================  =====================  ========================
layer                  ``index``           ``weight``             slots S
=====================  ==================  =====================  ========================
convolution            static (q, m)       ``None`` (hard)        M = kernel taps
ConvNN / hard k-NN     (b, q, k)           ``None`` (hard)        k
attention / non-local  ``None`` (all keys)  (b, [h,] q, n, 1)      1
N3 (continuous k-NN)   (b, q, m)           (b, q, m, k)           k
=====================  ==================  =====================  ========================

Combiners never read these fields directly: they call :meth:`Neighborhood.aggregate`, which
turns any per-key tensor into slot volumes, so every combiner works with every selector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_tensor
from .functional.candidates import candidate_sum
from .functional.gather import gather


@dataclass(frozen=True, eq=False)
class Neighborhood:
    """What a selector chose for every query.

    Args:
        num_keys: Nk, the number of key tokens that ``index`` points into.
        query_shape: spatial shape of the queries, ``prod(query_shape) == Nq``; the combiner
            reshapes its output to ``(B, C_out, *query_shape)``.
        index: ``(*lead, Nq, M)`` long tensor of candidate keys in ``[0, Nk)``, or ``None``
            for "every key is a candidate" (then M = Nk). ``lead`` is ``()`` for a static
            index shared by the whole batch, ``(B,)``, or ``(B, H)`` with a head axis.
        weight: ``(*lead, Nq, M, S)`` mixing the M candidates into S slots, or ``None`` for
            hard selection (slot s is candidate s, S = M).
        valid: ``(*lead, Nq, M)`` bool, ``False`` where a candidate lies outside the input
            (zero padding); invalid candidates contribute zero. ``None`` means all valid.
        num_heads: size of the head axis when ``lead`` ends with one, else ``None``.
    """

    num_keys: int
    query_shape: tuple[int, ...]
    index: Tensor | None = None
    weight: Tensor | None = None
    valid: Tensor | None = None
    num_heads: int | None = None

    def __post_init__(self) -> None:
        if self.index is None and self.weight is None:
            raise ValueError("a Neighborhood needs an index, a weight, or both; got neither")
        if self.index is not None and self.index.dtype != torch.long:
            raise TypeError(f"index must be a torch.long tensor, got dtype {self.index.dtype}")
        if self.weight is not None and self.index is not None and self.weight.shape[-2] != self.index.shape[-1]:
            raise ValueError(f"weight's candidate axis must match index: weight {tuple(self.weight.shape)}, "
                             f"index {tuple(self.index.shape)}")
        if self.weight is not None and self.index is None and self.weight.shape[-2] != self.num_keys:
            raise ValueError(f"an all-keys weight must have Nk={self.num_keys} candidates, "
                             f"got weight shape {tuple(self.weight.shape)}")
        if self.num_queries != math.prod(self.query_shape):
            raise ValueError(f"query_shape {self.query_shape} does not hold Nq={self.num_queries} queries")

    # ---- shape facts -------------------------------------------------------------------
    @property
    def num_queries(self) -> int:
        ref = self.index if self.index is not None else self.weight[..., 0]
        return ref.shape[-2]

    @property
    def num_candidates(self) -> int:
        return self.index.shape[-1] if self.index is not None else self.num_keys

    @property
    def num_slots(self) -> int:
        return self.weight.shape[-1] if self.weight is not None else self.index.shape[-1]

    @property
    def is_hard(self) -> bool:
        return self.weight is None

    # ---- applying it -------------------------------------------------------------------
    def aggregate(self, values: Tensor) -> Tensor:
        """Slot volumes of a per-key tensor.

        Shape:
            values: ``(*lead, Nk, C)``, where ``lead`` is ``(B,)`` or, for a neighbourhood
            with a head axis, ``(B, H)``  ->  ``(*lead, Nq, S, C)``.

        Slot ``s`` of query ``q`` is ``sum_m weight[q, m, s] * values[index[q, m]]`` (a hard
        neighbourhood copies candidate ``s``); invalid candidates count as zero.
        """
        check_tensor("values", values, ndim=(3, 4) if self.num_heads else 3)
        if values.shape[-2] != self.num_keys:
            raise ValueError(f"values must have Nk={self.num_keys} keys in dim -2, got shape {tuple(values.shape)}")
        if self.index is None:
            weight = self.weight
            if self.valid is not None:
                weight = weight * self.valid.unsqueeze(-1).to(weight.dtype)
            return torch.einsum("...qns,...nc->...qsc", weight.to(values.dtype), values)
        if self.weight is not None and self.index.ndim == 2 and self.weight.ndim == 4 and values.ndim == 3:
            # a static candidate list mixed into slots (N3): never gather the (B, Nq, M, C) candidates
            weight = self.weight
            if self.valid is not None:
                weight = weight * self.valid.unsqueeze(-1).to(weight.dtype)
            return candidate_sum(values, self.index, weight)
        gathered = gather(values, self.index, self.valid)  # (*lead, q, m, c)
        if self.weight is None:
            return gathered
        return torch.einsum("...qmc,...qms->...qsc", gathered, self.weight.to(values.dtype))

    def to_dense(self, batch: int = 1, dtype: torch.dtype = torch.float64) -> Tensor:
        """The neighbourhood as a matrix over keys: ``(*lead, Nq, S, Nk)``.

        ``aggregate(v) == to_dense() @ v`` slot by slot; this is the picture of a layer's
        selection used in the docs (a band for convolution, a dense row for attention).
        Memory is Nq * S * Nk: for inspection of small inputs only.
        """
        ref = self.index if self.index is not None else self.weight
        lead = ref.shape[:-2] if self.index is not None else ref.shape[:-3]
        if len(lead) == 0:
            lead = (batch,)
        eye = torch.eye(self.num_keys, dtype=dtype, device=ref.device)
        return self.aggregate(eye.expand(*lead, self.num_keys, self.num_keys))
