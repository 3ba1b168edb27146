"""An operator given by its parts: a selector and a combiner described as plain data.

``Parts({"type": "HardKNN", "k": 9, "space": "hybrid"}, {"type": "Conv1D"})`` becomes
``NeighborAggregator(HardKNN(9, space="hybrid", ...), Conv1D(C_in, C_out, 9))`` at every place
a backbone puts an operator; the channels, the number of spatial axes and the combiner's
slot count are filled in from the place and the selector. This is how ``compare`` ablates
*how neighbours are chosen* with everything else held fixed. The descriptions' keys are
checked once, when the :class:`Parts` is made; their values when a layer is built.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from neighborhoods import NeighborAggregator
from neighborhoods.combiners import Conv1D, Projection, WeightedMean
from neighborhoods.selectors import N3, FixedSpatial, HardKNN, SoftmaxAll
from operators.convnn import location_padding
from operators.n3 import embedding_network


class PartError(ValueError):
    """A bad selector/combiner description; ``path`` is the key it is about, e.g. ``('selector', 'k')``."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


#: the metric each HardKNN space ranks by unless ``metric`` is given (as ConvNN2d's similarities)
_DEFAULT_METRIC = {"features": "cosine", "positions": "chebyshev", "hybrid": "euclidean"}


def _hard_knn(cfg: dict[str, Any], in_channels: int, ndim: int) -> HardKNN:
    cfg = {"k": 9, "space": "features", **cfg}
    positions = cfg["space"] == "positions"
    cfg.setdefault("metric", _DEFAULT_METRIC.get(cfg["space"], "cosine"))
    if positions:  # the k nearest positions form a conv window (ConvNN2d's 'location' similarity)
        cfg.setdefault("padding", location_padding(cfg["k"], ndim))
        cfg.setdefault("self_first", False)
        cfg.setdefault("order", "index")
    return HardKNN(ndim=ndim, **cfg)


def _n3(cfg: dict[str, Any], in_channels: int, ndim: int) -> N3:
    cfg = {"k": 7, **cfg}
    embed = cfg.pop("embedding", None)
    temperature = cfg.pop("temperature", "scalar")
    embedding = None
    if embed is not None and embed is not False:
        if not isinstance(embed, Mapping):
            raise PartError(("selector", "embedding"), f"selector.embedding must be a table like "
                            f"{{channels = 8, hidden = 16, depth = 2}} or false, got {embed!r}")
        unknown = sorted(set(embed) - {"channels", "hidden", "depth"})
        if unknown:
            raise PartError(("selector", "embedding", unknown[0]), f"unknown key selector.embedding.{unknown[0]}; "
                            f"keys: channels, hidden, depth")
        embedding = embedding_network(in_channels, embed.get("channels", 8), embed.get("hidden", 16),
                                      embed.get("depth", 2), spatial_dims=ndim)
    if temperature not in ("scalar", "network"):
        raise PartError(("selector", "temperature"), f"selector.temperature must be 'scalar' or 'network', "
                        f"got {temperature!r}")
    temp = embedding_network(in_channels, 1, 16, 2, spatial_dims=ndim) if temperature == "network" else None
    return N3(embedding=embedding, temperature=temp, **cfg)


def _softmax_all(cfg: dict[str, Any], in_channels: int, ndim: int) -> SoftmaxAll:
    return SoftmaxAll(in_channels, **cfg)


def _fixed(cfg: dict[str, Any], in_channels: int, ndim: int) -> FixedSpatial:
    return FixedSpatial(ndim=ndim, **{"kernel_size": 3, "padding": "same", **cfg})


#: selector type -> (builder, the class whose signature lists the allowed keys, keys filled in here)
SELECTORS: dict[str, tuple[Callable[..., nn.Module], type, set[str]]] = {
    "FixedSpatial": (_fixed, FixedSpatial, {"ndim"}),
    "HardKNN": (_hard_knn, HardKNN, {"ndim"}),
    "N3": (_n3, N3, {"device", "dtype"}),
    "SoftmaxAll": (_softmax_all, SoftmaxAll, {"in_channels", "device", "dtype"}),
}
#: extra keys a selector description may hold beyond its class's arguments
_EXTRA = {"N3": {"embedding", "temperature"}}
COMBINERS = {"Conv1D": Conv1D, "WeightedMean": WeightedMean, "Projection": Projection}
_COMBINER_FILLED = {"in_channels", "out_channels", "kernel_size", "num_slots", "patches", "device", "dtype",
                    "value", "output"}


def allowed_keys(part: str, type_name: str) -> list[str]:
    """The keys a ``part`` (``'selector'``/``'combiner'``) of ``type_name`` accepts, besides ``type``."""
    if part == "selector":
        _, cls, filled = SELECTORS[type_name]
        extra = _EXTRA.get(type_name, set())
        filled = filled | extra  # N3's modules are described, not passed
    else:
        cls, filled, extra = COMBINERS[type_name], _COMBINER_FILLED, set()
    params = set(inspect.signature(cls.__init__).parameters) - {"self"} - filled
    return sorted(params | extra)


def check_part(part: str, cfg: Any) -> None:
    """Validate the keys of a selector/combiner description (values are checked when it is built)."""
    table = SELECTORS if part == "selector" else COMBINERS
    if not isinstance(cfg, Mapping):
        raise PartError((part,), f"{part} must be a table like {{type = \"{next(iter(table))}\", ...}}, got {cfg!r}")
    kind = cfg.get("type")
    if kind not in table:
        raise PartError((part, "type"), f"{part}.type must be one of {', '.join(table)}, got {kind!r}")
    keys = allowed_keys(part, kind)
    for key in cfg:
        if key != "type" and key not in keys:
            raise PartError((part, key), f"unknown key {part}.{key} for {kind}; keys: {', '.join(keys)}")


def num_slots(selector: nn.Module) -> int | tuple[int, ...]:
    """The slots a selector fills per query: a conv window's shape, k, or 1 for softmax-all."""
    if isinstance(selector, FixedSpatial):
        return selector.kernel_size
    if isinstance(selector, SoftmaxAll):
        return 1
    return selector.k


#: the combiner of a description that names only a selector: a weight matrix per slot
DEFAULT_COMBINER: Mapping[str, Any] = {"type": "Conv1D"}


@dataclass(frozen=True)
class Parts:
    """A selector and a combiner described as data, their keys checked here (:func:`check_part`).

    Raises :class:`PartError` (a ``ValueError``) naming the bad key.
    """

    selector: Mapping[str, Any]
    combiner: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_COMBINER))

    def __post_init__(self) -> None:
        check_part("selector", self.selector)
        check_part("combiner", self.combiner)

    def build(self, in_channels: int, out_channels: int, ndim: int = 2) -> NeighborAggregator:
        """``NeighborAggregator(selector, combiner)`` for ``in_channels -> out_channels``.

        Shape:
            x: ``(B, in_channels, *spatial)`` with ``ndim`` spatial axes -> ``(B, out_channels, *spatial)``.
        """
        s_cfg = {k: v for k, v in self.selector.items() if k != "type"}
        c_cfg = {k: v for k, v in self.combiner.items() if k != "type"}
        sel = SELECTORS[self.selector["type"]][0](dict(s_cfg), in_channels, ndim)
        slots = num_slots(sel)
        kind = self.combiner["type"]
        if kind == "Conv1D":
            comb = Conv1D(in_channels, out_channels, slots, **c_cfg)
        elif kind == "WeightedMean":
            comb = WeightedMean(in_channels, out_channels=out_channels, **c_cfg)
        else:
            k = slots if isinstance(slots, int) else math.prod(slots)
            comb = Projection(in_channels, k, out_channels, patches=getattr(sel, "patches", None), **c_cfg)
        return NeighborAggregator(sel, comb)

    def describe(self) -> str:
        """``HardKNN(k=9, space='hybrid') + Conv1D``: a short label for tables."""

        def one(cfg: Mapping[str, Any]) -> str:
            args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "type")
            return f"{cfg.get('type')}({args})" if args else str(cfg.get("type"))

        return f"{one(self.selector)} + {one(self.combiner)}"
