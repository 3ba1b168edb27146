"""What a registered operator is, read off its parts: ``operators.info(name)``.

Nothing here is a table per name. The entry's example is built (under a forked RNG, so
asking leaves the caller's random state alone) and its selector and combiner say how keys
are chosen (``selection``, ``locality``), what selecting and aggregating cost, and whether
the combiner adds the input back; running the example with ``path="fast"`` says which
native kernel, if any, the layer takes. A composite (``BranchingConv2d``) reports its
aggregators' answers joined by ``" + "``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from neighborhoods import NeighborAggregator

from .registry import entry

#: the input layout of a layer with that many spatial axes (DESIGN.md's convention)
LAYOUTS = {1: "(B, C, N)", 2: "(B, C, H, W)", 3: "(B, C, T, H, W)"}


@dataclass(frozen=True)
class OperatorInfo:
    """One registered operator at a glance (``neighbor-zoo list`` prints these).

    Attributes:
        name: the canonical registered name.
        family: its group in listings (``'convolution'``, ``'convnn'``, ``'attention'``, ...).
        layout: the input layout, ``'(B, C, H, W)'``, ``'(B, C, N)'`` or MHA's ``'(B, N, E)'``.
        keeps_channels: ``create(name, in_channels=C)`` outputs C channels (measured on the
            example; the uniform constructor promises it for every name).
        residual: the output adds the input back (``Y = X + ...``).
        selection: ``'fixed'``, ``'hard content'``, ``'soft content'`` or ``'dense'``.
        locality: ``'local'`` or ``'global'``.
        cost: the cost class on the default path for N tokens: ``'O(N k)'``, ``'O(N^2)'``,
            ``'O(N (H+W))'`` (criss-cross), ``'O(N C^2)'`` (factorised affinities), ...
        fast_path: the native kernel its example takes (e.g. ``'F.conv2d'``), or ``None``.
        aliases: other names it answers to.
    """

    name: str
    family: str
    layout: str
    keeps_channels: bool
    residual: bool
    selection: str
    locality: str
    cost: str
    fast_path: str | None
    aliases: tuple[str, ...]


def _aggregators(module: nn.Module) -> list[NeighborAggregator]:
    """The module itself if it is an aggregator, else the aggregators directly inside it."""
    if isinstance(module, NeighborAggregator):
        return [module]
    return [m for m in module.children() if isinstance(m, NeighborAggregator)]


def part_inputs(layer: nn.Module, parts: list[NeighborAggregator], x: Tensor) -> list[Tensor]:
    """The input each part sees when ``layer`` runs on ``x`` (a composite's later parts see earlier outputs)."""
    seen: dict[int, Tensor] = {}
    hooks = [p.register_forward_pre_hook(lambda m, args: seen.setdefault(id(m), args[0])) for p in parts]
    try:
        with torch.no_grad():
            layer(x)
    finally:
        for h in hooks:
            h.remove()
    return [seen[id(p)] for p in parts]


def _fast_path(layer: NeighborAggregator, x: Tensor, channels_first: bool) -> str | None:
    """The native kernel ``layer`` runs on ``x`` (``fast_path_name``: the registry's ``why_not``
    decides on the configuration and ``x``), or ``None`` when it takes the reference path."""
    return layer.fast_path_name(x if channels_first else None)  # SelfAttention's x is (B, N, E), not what it aggregates


def _joined(values: list[str]) -> str:
    return " + ".join(dict.fromkeys(values))


@functools.lru_cache(maxsize=None)
def info(name: str) -> OperatorInfo:
    """What the operator registered under ``name`` (any case, or an alias) is; see :class:`OperatorInfo`."""
    e = entry(name)
    ex = e.example
    channel_axis = -1 if getattr(e.target, "layout", None) == "(B, N, E)" else 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layer = e.build(None, None, ex.kwargs).eval()
        x = torch.randn(*ex.input_shape)
        kept = e.build(None, None, {k: v for k, v in ex.kwargs.items() if k != "out_channels"}).eval()
        with torch.no_grad():
            keeps = kept(x).shape[channel_axis] == x.shape[channel_axis]
        parts = _aggregators(layer)
        fast = [_fast_path(p, xp, channel_axis == 1) for p, xp in zip(parts, part_inputs(layer, parts, x))]
    return OperatorInfo(
        name=e.name, family=e.family,
        layout=getattr(e.target, "layout", None) or LAYOUTS[len(ex.input_shape) - 2],
        keeps_channels=bool(keeps),
        # a composite may say itself (RCCA2d's attention is residual inside, the head is not)
        residual=bool(getattr(layer, "residual", any(bool(getattr(p.combiner, "residual", False)) for p in parts))),
        selection=_joined([p.selector.selection for p in parts]),
        locality=_joined([p.selector.locality for p in parts]),
        cost=_joined([p.selector.cost(f is not None) for p, f in zip(parts, fast)]),
        fast_path=(fast[0] if len(fast) == 1 else _joined([f or "reference" for f in fast])),
        aliases=e.aliases)
