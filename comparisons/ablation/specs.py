"""What ``compare`` puts into a backbone: an operator by registered name, by shorthand, or by parts.

An :class:`OperatorSpec` is plain data (JSON-able, so it is saved with every result). When
a sweep is made, each spec is resolved once, for the sweep's backbone, into a
:class:`LayerFactory`: ``factory(in_channels=, out_channels=) -> nn.Module`` plus the input
layout the layer expects; :func:`operators.swap` puts it into the backbone's places. Backbones
never see the spec (nor the factory: they are plain torch networks).

Shorthands are the comparison's own names for the operators it contrasts, with settings that
fit the backbone (``n3`` on 8x8 digits needs 2x2 patches; on 32x32 denoising crops 8x8
patches): ``conv2d``, ``convnn``, ``branching``, ``attention``, ``nonlocal``, ``n3``,
``identity`` (the no-mixing control, ``operators.Identity2d``: each place's 1x1 channel map).
Any registered name (``neighbor-zoo list``) works too, with its own defaults,
and so does ``name(key=value, ...)`` on the command line.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

import operators

from .parts import DEFAULT_COMBINER, Parts

#: the operators of the default ablation, in table order
DEFAULT_OPERATORS = ("conv2d", "convnn", "branching", "attention", "nonlocal", "n3")
#: the token mixers of the ViT backbone's default ablation
DEFAULT_MIXERS = ("attention", "convnn", "n3", "nonlocal")

# N3 patch settings per backbone: VGG's maps are 8x8 then 4x4 on digits (2x2 patches, a 4x4
# window: 8 candidates); DnCNN's crops are 32x32 or larger (8x8 patches every 4 px in a 24x24
# window: 24 candidates, the paper's 10/5/80 scaled down); ViT's tokens are searched all at once.
# In VGG, where N3 blocks replace every convolution, the raw volumes [x, N_1, ..., N_k] (the
# paper's text, relative=False) trained to 44% digits accuracy in 3 epochs where the relative
# ones (the public code's default) reached 21% (seed 0, width 8): the projection is the same
# family either way, the starting point is not.
_N3_SMALL = dict(k=3, patch_size=2, patch_stride=1, window=4, embed_channels=8, hidden_channels=8, depth=2, relative=False)
_N3_LARGE = dict(k=7, patch_size=8, patch_stride=4, window=24, embed_channels=8, hidden_channels=16, depth=2)

#: shorthand -> backbone (or "*") -> (registered name, constructor kwargs)
SHORTHANDS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "conv2d": {"*": ("conv2d", dict(kernel_size=3, padding=1))},
    "convnn": {"*": ("convnn2d", dict(k=9)), "vit": ("convnn1d", dict(k=9))},
    "branching": {"*": ("branching_conv2d", dict(ratio=0.5, k=9))},
    "attention": {"*": ("self_attention2d", dict(num_heads=1)), "vit": ("self_attention", dict(num_heads=2))},
    "nonlocal": {"*": ("nonlocal2d", {}), "vit": ("nonlocal1d", {})},
    "n3": {"*": ("n3block2d", _N3_SMALL), "dncnn": ("n3block2d", _N3_LARGE),
           "vit": ("n3block1d", dict(k=3, embed_channels=8, hidden_channels=16, depth=2))},
    "identity": {"*": ("identity2d", {})},
}


#: what :meth:`LayerFactory.__call__` calls: ``(in_channels=, out_channels=, **kwargs) -> layer``
Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class LayerFactory:
    """An operator resolved for one backbone: builds its layer for any place of that backbone.

    ``factory(in_channels=, out_channels=)`` is the layer for a place whose input has
    ``in_channels`` and whose output ``out_channels``: the builder :func:`operators.swap`
    calls (with ``stride``/``padding`` too where a place strides). The layer itself takes
    its input in :attr:`layout`; ``swap`` runs a sequence layout on the map's positions.

    Attributes:
        label: the operator's row in tables.
        layout: ``'(B, C, H, W)'``, ``'(B, C, N)'`` or ``'(B, N, E)'``.
        description: what it builds, e.g. ``convnn2d(k=9)`` or ``HardKNN(k=9) + Conv1D``.
    """

    label: str
    layout: str
    description: str
    build: Builder = field(repr=False)

    def __call__(self, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
        return self.build(in_channels=in_channels, out_channels=out_channels, **kwargs)


@dataclass(frozen=True)
class OperatorSpec:
    """One operator of a sweep, as plain data (saved with every result).

    Exactly one of ``name`` (a registered name or a shorthand) and the pair
    ``selector`` / ``combiner`` (descriptions, see :mod:`comparisons.ablation.parts`; the
    combiner defaults to ``Conv1D``) is given; the parts' keys are checked here, once.
    ``label`` is the row in tables; ``kwargs`` go to the constructor; ``origin`` says where
    the spec came from (a config file and line) for error messages. :meth:`resolve` turns it
    into the :class:`LayerFactory` a backbone builds from.
    """

    label: str
    name: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    selector: dict[str, Any] | None = None
    combiner: dict[str, Any] | None = None
    origin: str | None = None
    parts: Parts | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not re.fullmatch(r"[A-Za-z0-9_.:=()+, -]+", self.label):
            raise ValueError(f"operator label must be a non-empty string of letters, digits and _.:=()+,- , "
                             f"got {self.label!r}")
        if (self.name is None) == (self.selector is None):
            raise ValueError(f"operator {self.label!r} needs either name or selector + combiner")
        if self.selector is not None:
            combiner = self.combiner if self.combiner is not None else dict(DEFAULT_COMBINER)
            object.__setattr__(self, "parts", Parts(self.selector, combiner))

    def resolve(self, backbone: str) -> LayerFactory:
        """The layer factory this spec stands for in ``backbone`` (shorthands expanded, names looked up).

        ``ValueError`` for a name that is neither a shorthand nor registered, listing both.
        """
        if self.parts is not None:
            return LayerFactory(self.label, "(B, C, H, W)", self.parts.describe(),
                                functools.partial(self.parts.build, ndim=2))
        assert self.name is not None
        if self.name in SHORTHANDS:
            table = SHORTHANDS[self.name]
            name, defaults = table.get(backbone, table["*"])
            kwargs = {**defaults, **self.kwargs}
        else:
            name, kwargs = self.name, dict(self.kwargs)
        description = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        try:
            operators.registry.constructor(name)
        except ValueError:
            where = f" (from {self.origin})" if self.origin else ""
            raise ValueError(f"unknown operator {name!r}; shorthands: {', '.join(SHORTHANDS)}; registered names: "
                             f"{', '.join(operators.available())}{where}") from None
        return LayerFactory(self.label, operators.info(name).layout, description,
                            functools.partial(operators.create, name, **kwargs))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        if self.parts is None:
            out.update(name=self.name, kwargs=self.kwargs)
        else:
            out.update(selector=self.selector, combiner=self.parts.combiner)
        return out


def parse_operator_list(text: str) -> list[OperatorSpec]:
    """``'conv2d,convnn(k=4),branching_conv2d(ratio=0.25)'`` -> specs; values are JSON literals or bare words.

    Commas inside parentheses separate keyword arguments, outside them operators. Nothing is
    evaluated: a value is parsed as JSON (numbers, true/false, quoted strings, lists) or kept
    as a string.
    """
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            raise ValueError(f"--operators has an unmatched ')' at position {i}: {text!r}")
        if ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise ValueError(f"--operators has an unclosed '(': {text!r}")
    specs = []
    for item in items:
        if not item:
            raise ValueError(f"--operators has an empty entry: {text!r}")
        m = re.fullmatch(r"([A-Za-z0-9_]+)(?:\((.*)\))?", item)
        if m is None:
            raise ValueError(f"--operators entry {item!r} must be NAME or NAME(key=value, ...)")
        kwargs = {}
        for arg in filter(None, (a.strip() for a in _split_args(m.group(2) or ""))):
            key, eq, value = arg.partition("=")
            if not eq or not key.strip().isidentifier():
                raise ValueError(f"--operators entry {item!r}: {arg!r} must be key=value")
            kwargs[key.strip()] = _literal(value.strip())
        specs.append(OperatorSpec(label=item, name=m.group(1), kwargs=kwargs))
    return specs


def _split_args(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    return out


def _literal(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def spec_from_json(data: Mapping[str, Any]) -> OperatorSpec:
    """Inverse of :meth:`OperatorSpec.to_json`."""
    return OperatorSpec(label=data["label"], name=data.get("name"), kwargs=dict(data.get("kwargs", {})),
                        selector=data.get("selector"), combiner=data.get("combiner"))
