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

For pictures, :meth:`Neighborhood.query_map` paints one query's weights onto the input's
pixels (through the selector's :class:`~neighborhoods.footprint.PixelFootprint`) and
:meth:`Neighborhood.to_dense` gives the whole neighbourhood as one ``(B, H, Nq, S, Nk)`` tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .checks import check_int, check_tensor
from .footprint import PixelFootprint, flat_index
from .functional.candidates import candidate_sum
from .functional.gather import gather
from .functional.stages import stage

#: the default ceiling of :meth:`Neighborhood.to_dense` (1 GiB): it is for inspecting small inputs
DENSE_MAX_BYTES = 1 << 30


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
        footprint: where keys and queries sit on the input's pixels (filled by every selector
            in the zoo whose tokens have a place on the input); needed by :meth:`query_map`
            and :meth:`query_at` only, ``None`` when unknown.
    """

    num_keys: int
    query_shape: tuple[int, ...]
    index: Tensor | None = None
    weight: Tensor | None = None
    valid: Tensor | None = None
    num_heads: int | None = None
    footprint: PixelFootprint | None = None

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
        if self.footprint is not None and (self.footprint.keys.num_tokens != self.num_keys
                                           or self.footprint.queries.num_tokens != self.num_queries):
            raise ValueError(f"the footprint places {self.footprint.keys.num_tokens} keys and "
                             f"{self.footprint.queries.num_tokens} queries, but the neighbourhood has "
                             f"Nk={self.num_keys} keys and Nq={self.num_queries} queries")

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

    @property
    def batch_size(self) -> int | None:
        """B, or ``None`` for a static neighbourhood shared by every batch element."""
        for t, tail in ((self.index, 1), (self.weight, 2), (self.valid, 1)):
            if t is not None and t.ndim - 1 - tail >= 1:
                return t.shape[0]
        return None

    # ---- applying it -------------------------------------------------------------------
    def aggregate(self, values: Tensor) -> Tensor:
        """Slot volumes of a per-key tensor.

        Shape:
            values: ``(*lead, Nk, C)``, where ``lead`` is ``(B,)`` or, for a neighbourhood
            with a head axis, ``(B, H)``  ->  ``(*lead, Nq, S, C)``. A single-head
            neighbourhood also takes head-less values ``(B, Nk, C)`` (-> ``(B, Nq, S, C)``),
            which is how head-less combiners (``Conv1D``, ``Projection``) read an attention
            map; with several heads they must say per head, so that is an error.

        Slot ``s`` of query ``q`` is ``sum_m weight[q, m, s] * values[index[q, m]]`` (a hard
        neighbourhood copies candidate ``s``); invalid candidates count as zero.
        """
        check_tensor("values", values, ndim=(3, 4) if self.num_heads else 3)
        if values.shape[-2] != self.num_keys:
            raise ValueError(f"values must have Nk={self.num_keys} keys in dim -2, got shape {tuple(values.shape)}")
        if self.num_heads is not None and values.ndim == 3 and self._has_head_axis():
            if self.num_heads != 1:
                raise ValueError(f"this neighbourhood has num_heads={self.num_heads}: values must be per head, "
                                 f"(B, H, Nk, C), got {tuple(values.shape)}; a combiner without heads (Conv1D, "
                                 f"Projection) needs a single-head selector (num_heads=1), or use WeightedMean")
            return self.aggregate(values.unsqueeze(1)).squeeze(1)
        if self.index is None:
            with stage("combining"):  # every key weighted: one product
                weight = self.weight
                if self.valid is not None:
                    weight = weight * self.valid.unsqueeze(-1).to(weight.dtype)
                return torch.einsum("...qns,...nc->...qsc", weight.to(values.dtype), values)
        if self.weight is not None and self.index.ndim == 2 and self.weight.ndim == 4 and values.ndim == 3:
            # a static candidate list mixed into slots (N3): never gather the (B, Nq, M, C) candidates
            weight = self.weight
            if self.valid is not None:
                weight = weight * self.valid.unsqueeze(-1).to(weight.dtype)
            return candidate_sum(values, self.index, weight)  # labels itself "combining"
        with stage("gathering"):
            gathered = gather(values, self.index, self.valid)  # (*lead, q, m, c)
        if self.weight is None:
            return gathered
        with stage("combining"):
            return torch.einsum("...qmc,...qms->...qsc", gathered, self.weight.to(values.dtype))

    def _has_head_axis(self) -> bool:
        return any(t is not None and t.ndim - 1 - tail == 2
                   for t, tail in ((self.index, 1), (self.weight, 2), (self.valid, 1)))

    # ---- inspecting it -----------------------------------------------------------------
    def to_dense(self, batch: int = 1, dtype: torch.dtype = torch.float64, max_bytes: int | None = None) -> Tensor:
        """The neighbourhood as one tensor over keys, the same layout for every operator.

        Returns ``D`` of shape ``(B, H, Nq, S, Nk)``: ``D[b, h, q, s, n]`` is the weight key
        ``n`` gets in slot ``s`` of query ``q`` (H = 1 without heads; B = ``batch`` for a
        static neighbourhood, which every batch element shares). ``aggregate(v)`` equals
        ``D @ v`` slot by slot; a hard slot is one-hot, an invalid (zero-padding) candidate
        is a zero row entry. This is the picture of a layer's selection used in the docs (a
        band for convolution, a dense row for attention); it is differentiable.

        Memory is ``B H Nq S Nk`` entries, so it is refused, before anything is allocated,
        when the estimate (the result plus, for indexed neighbourhoods, the scattered weights)
        exceeds ``max_bytes`` (default :data:`DENSE_MAX_BYTES`, 1 GiB). Use
        :meth:`query_map` or :meth:`aggregate` for large inputs; they never build it.
        ``dtype`` must be a floating-point dtype: weights are real numbers (an integer dtype
        would truncate a softmax row to zeros), so another one is a ``TypeError``.
        """
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype (the weights are real numbers), got dtype={dtype!r}")
        limit = DENSE_MAX_BYTES if max_bytes is None else check_int("max_bytes", max_bytes, minimum=0)
        b = self.batch_size or check_int("batch", batch, minimum=1)
        h, nq, s, nk = self.num_heads or 1, self.num_queries, self.num_slots, self.num_keys
        entries = b * h * nq * s * (nk + (self.num_candidates if self.index is not None else 0))
        needed = entries * torch.empty((), dtype=dtype).element_size()
        if needed > limit:
            raise ValueError(f"to_dense would allocate about {needed} bytes ({needed / 2 ** 30:.3g} GiB) for a "
                             f"(B, H, Nq, S, Nk) = {(b, h, nq, s, nk)} tensor, more than max_bytes={limit}; pass a "
                             f"larger max_bytes to allow it, or use query_map / aggregate, which never build it")
        full = (b, h, nq)
        valid = None if self.valid is None else _lead_to(self.valid, 1, full)
        if self.index is None:
            weight = _lead_to(self.weight, 2, full).to(dtype)
            if valid is not None:
                weight = weight * valid.unsqueeze(-1).to(dtype)
            return weight.transpose(-1, -2).contiguous()
        index = _lead_to(self.index, 1, full)  # (b, h, q, m)
        if self.weight is None:  # hard: slot s is candidate s
            index = index.unsqueeze(-1)
            src = torch.ones(index.shape, dtype=dtype, device=index.device)
            if valid is not None:
                src = src * valid.unsqueeze(-1).to(dtype)
        else:
            src = _lead_to(self.weight, 2, full).to(dtype).transpose(-1, -2)  # (b, h, q, s, m)
            if valid is not None:
                src = src * valid.unsqueeze(-2).to(dtype)
            index = index.unsqueeze(-2).expand(*full, s, index.shape[-1])
        dense = torch.zeros(*full, s, nk, dtype=dtype, device=index.device)
        return dense.scatter_add(-1, index, src)

    def key_weights(self, query: int | tuple[int, ...], batch: int = 0, head: int | None = None,
                    slot: int | None = None) -> Tensor:
        """The weight every key gets from one query: ``(Nk,)``.

        Summed over the slots (``slot=None``) or of one slot; averaged over the heads
        (``head=None``) or of one head; invalid candidates give nothing, and a key that is a
        candidate several times (reflect padding) adds up. A hard slot gives its key weight 1.
        ``query`` is a flat index into the query grid or a tuple of its coordinates;
        ``batch`` is ignored by a static neighbourhood (it is the same for every element).
        """
        q = flat_index("query", query, tuple(self.query_shape))
        b = check_int("batch", batch, minimum=0)
        if self.batch_size is not None and b >= self.batch_size:
            raise ValueError(f"batch must be < B={self.batch_size}, got batch={b}")
        if head is not None:
            if self.num_heads is None:
                raise ValueError(f"head={head!r} given, but this neighbourhood has no heads; use head=None")
            if check_int("head", head, minimum=0) >= self.num_heads:
                raise ValueError(f"head must be < num_heads={self.num_heads}, got head={head}")
        if slot is not None and check_int("slot", slot, minimum=0) >= self.num_slots:
            raise ValueError(f"slot must be < S={self.num_slots}, got slot={slot}")
        heads = [head] if head is not None else list(range(self.num_heads or 1))
        return torch.stack([self._row(q, b, h, slot) for h in heads]).mean(0)

    def _row(self, q: int, b: int, h: int, slot: int | None) -> Tensor:
        """Key weights of query ``q`` in batch element ``b``, head ``h``."""
        index, weight, valid = (None if t is None else _pick(t, tail, b, h)[q]
                                for t, tail in ((self.index, 1), (self.weight, 2), (self.valid, 1)))
        if weight is None:  # hard: slot s is candidate s
            weight = torch.eye(index.shape[-1], dtype=torch.get_default_dtype(), device=index.device)
        weight = weight.sum(-1) if slot is None else weight[:, slot]  # (m,)
        if valid is not None:
            weight = weight * valid.to(weight.dtype)
        if index is None:
            return weight
        return torch.zeros(self.num_keys, dtype=weight.dtype, device=weight.device).index_add(0, index, weight)

    def query_map(self, query: int | tuple[int, ...], batch: int = 0, head: int | None = None,
                  slot: int | None = None) -> Tensor:
        """The weight each *input pixel* gets from one query: ``(*input_shape)``, e.g. ``(H, W)``.

        :meth:`key_weights` painted onto the pixels the keys cover (see
        :class:`~neighborhoods.footprint.PixelFootprint`): a key that is a pixel gives it its
        weight; a pooled key (the non-local block's ``sub_sample``, 2 x 2) or an N3 patch
        (``p x p``) spreads its weight evenly over its pixels; CGNL's ``(channel, position)``
        entries add up on their position. Zero-padding taps reach no pixel. So the map sums
        to the query's weight mass: the number of valid hard slots (a convolution's valid taps,
        ConvNN's k), a softmax row's 1 per slot (attention, criss-cross), N3's k volumes
        (each of whose weights sums to 1 over the candidates).

        Args: as :meth:`key_weights`; ``head=None`` averages the heads' maps (as
        ``nn.MultiheadAttention``'s ``average_attn_weights``), ``slot=None`` sums the slots.
        Which query covers a pixel: :meth:`query_at`.

        Every selector in the zoo records its footprint. A layer's map is that of
        ``layer.neighborhood(x)``: a repeated block (criss-cross's recurrence) shows one
        step; a composite that is not itself a ``NeighborAggregator`` (``BranchingConv2d``)
        has no neighbourhood of its own, each of its branches has one.
        """
        return self._footprint().paint(self.key_weights(query, batch, head, slot))

    def query_at(self, pixel: int | tuple[int, ...]) -> int:
        """The flat query index located at an input pixel (its own index when queries are pixels).

        The query whose centre (of the window a convolution reads, of an N3 patch) is nearest
        the pixel, ties to the lowest index: see :meth:`PixelFootprint.query_at`.
        """
        return self._footprint().query_at(pixel)

    def _footprint(self) -> PixelFootprint:
        if self.footprint is None:
            raise ValueError("this neighbourhood does not say where its keys and queries sit on the input's pixels "
                             "(footprint=None): its selector did not record it, e.g. a key module that reshapes the "
                             "grid other than by pooling it by an integer factor")
        return self.footprint


def _pick(t: Tensor, tail: int, batch: int, head: int) -> Tensor:
    """``(*lead, Nq, *tail)`` -> ``(Nq, *tail)`` for one batch element and head (a static axis is shared)."""
    lead = t.ndim - 1 - tail
    if lead >= 1:
        t = t[batch]
    return t[head] if lead == 2 else t


def _lead_to(t: Tensor, tail: int, full: tuple[int, int, int]) -> Tensor:
    """``(*lead, Nq, *tail)`` with lead ``()``, ``(B,)`` or ``(B, H)`` -> ``(B, H, Nq, *tail)`` (a view)."""
    lead = t.ndim - 1 - tail
    if lead == 0:
        t = t[None, None]
    elif lead == 1:
        t = t.unsqueeze(1)
    return t.expand(*full, *t.shape[3:])
