"""A part's tensors held by the layer around it, under the layer's public names.

A named layer is a ``NeighborAggregator(selector, combiner)``, so its weights are born inside
the parts (``combiner.weight``, ``selector.query.weight``). Users, and torch's utilities,
expect them on the layer itself under torch's names: ``weight_norm`` / ``spectral_norm`` /
``prune`` act on ``layer.weight``, ``torch.func.functional_call`` swaps the keys of
``layer.state_dict()``, and an EMA that updates ``state_dict()`` values in place expects
them to be the parameters' storage. :func:`lift` makes that true by moving a parameter (or
a submodule) from a part to the layer; the part then reads it back through the layer on
every access, so whatever the layer's attribute is at that moment (a plain parameter, a
parametrization's output, a pruned tensor, a tensor swapped in by ``functional_call``) is
what the part computes with. ``rows`` lifts a block of rows of a packed tensor, as
``nn.MultiheadAttention`` packs ``[W_q; W_k; W_v]`` into ``in_proj_weight``.

The link is an ordinary attribute of the part (not a submodule), so a layer pickles and
deep-copies with its links pointing at the copy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Liftable:
    """Mixin for ``nn.Module`` parts whose tensors a layer may hold (see :func:`lift`).

    Placed before ``nn.Module`` in the bases; a lifted name is answered from the holder
    before the module's own registries are looked at.
    """

    def __getattr__(self, name: str) -> Any:
        lifted = self.__dict__.get("_lifted")
        if lifted is not None and name in lifted:
            holder, public, rows = lifted[name]
            value = getattr(holder, public)
            return value if rows is None or value is None else value[rows[0]:rows[1]]
        return super().__getattr__(name)  # type: ignore[misc]


def _take(part: nn.Module, name: str) -> tuple[Any, bool]:
    """Remove ``name`` from ``part``'s registries: (its value, whether it was a parameter, possibly ``None``)."""
    for is_parameter, registry in ((True, part._parameters), (False, part._modules)):
        if name in registry:
            return registry.pop(name), is_parameter
    if name in part.__dict__ and part.__dict__[name] is None:  # an absent submodule, set as a plain None
        return part.__dict__.pop(name), False
    raise ValueError(f"{type(part).__name__} has no parameter or submodule {name!r} to lift")


def _link(part: nn.Module, name: str, holder: nn.Module, public: str, rows: tuple[int, int] | None) -> None:
    if not isinstance(part, Liftable):
        raise TypeError(f"{type(part).__name__} cannot lend its tensors (it is not a neighborhoods part)")
    part.__dict__.setdefault("_lifted", {})[name] = (holder, public, rows)
    holder.__dict__.setdefault("_lifted_from", {})[public] = part


def lift(part: nn.Module, name: str, holder: nn.Module, public: str | None = None) -> None:
    """Move ``part.<name>`` (a parameter or a submodule) to ``holder.<public>`` and read it from there.

    ``public`` defaults to ``name``. A ``None`` parameter (``bias=False``) is registered on the
    holder as ``None``, as torch's layers do.
    """
    public = name if public is None else public
    value, is_parameter = _take(part, name)
    if is_parameter:
        holder.register_parameter(public, value)
    else:
        holder.add_module(public, value)
    _link(part, name, holder, public, None)


def lift_packed(parts: list[tuple[nn.Module, str]], holder: nn.Module, public: str) -> None:
    """Concatenate ``part.<name>`` of each ``(part, name)`` along dim 0 into one parameter ``holder.<public>``.

    Each part then reads its block of rows (a view, so gradients and in-place updates reach
    the packed parameter). All parts' tensors must be ``None`` (registered as ``None``) or
    all tensors.
    """
    values = [_take(part, name)[0] for part, name in parts]
    if all(v is None for v in values):
        holder.register_parameter(public, None)
        packed_rows = [None] * len(parts)
    elif any(v is None for v in values):
        raise ValueError(f"cannot pack {public!r}: some of the parts' tensors are None and some are not")
    else:
        with torch.no_grad():
            holder.register_parameter(public, nn.Parameter(torch.cat([v.detach() for v in values], 0)))
        ends = torch.tensor([v.shape[0] for v in values]).cumsum(0).tolist()
        packed_rows = list(zip([0, *ends[:-1]], ends))
    for (part, name), rows in zip(parts, packed_rows):
        _link(part, name, holder, public, rows)


def lifted_names(holder: nn.Module) -> set[str]:
    """The names on ``holder`` that a part lent it (a part re-initialises what it lent, not the holder)."""
    return set(holder.__dict__.get("_lifted_from", {}))


def lent_modules(part: nn.Module) -> list[nn.Module]:
    """The submodules ``part`` lent to a holder with :func:`lift` (still the part's to re-initialise)."""
    lent = [getattr(holder, public) for holder, public, _ in part.__dict__.get("_lifted", {}).values()]
    return [m for m in lent if isinstance(m, nn.Module)]
