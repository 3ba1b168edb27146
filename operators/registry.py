"""A catalogue of the zoo: names -> constructors, like timm's model registry.

One naming rule: a class registers under the snake_case of its name (``ConvNN2d`` ->
``conv_nn2d``, ``NonLocalBlock2d`` -> ``non_local_block2d``), a preset of it under
``<class name>_<variant>`` (``conv_nn2d_euclidean``). Earlier names stay as aliases
(``convnn2d``, ``nonlocal2d``, ...). Lookups ignore case; an unknown name suggests the
closest ones.

Every entry builds with one call, ``create(name, in_channels=C, out_channels=None, **kw)``:
``out_channels=None`` keeps C, and the entry's own defaults make the call complete (a
3x3 'same' kernel for ``conv2d``, one head for ``self_attention``). ``in_channels`` is the
constructor's first parameter (``embed_dim`` for :class:`~operators.SelfAttention`, as
``torch.nn.MultiheadAttention`` names it).
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

#: characters that make a filter a shell-style wildcard rather than a substring
WILDCARDS = "*?["


@dataclass(frozen=True)
class Example:
    """A small, valid construction of an operator and an input for it.

    The registry-driven tests build every operator from its example (shape, NaN, backward,
    state_dict, repr checks), :func:`operators.info` inspects it, and the CLI uses it to show
    what a layer selects.
    """

    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Entry:
    """One registered name: what it builds and how to build it with the uniform arguments."""

    name: str
    target: type
    defaults: dict[str, Any]
    family: str
    example: Example
    aliases: tuple[str, ...] = field(default=())

    @functools.cached_property
    def _parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.target).parameters)

    @property
    def constructor(self) -> Callable[..., nn.Module]:
        """The class, or a ``functools.partial`` of it for a preset."""
        return functools.partial(self.target, **self.defaults) if self.defaults else self.target

    def build(self, in_channels: int | None, out_channels: int | None, kwargs: dict[str, Any]) -> nn.Module:
        """``target(**defaults, **kwargs)`` with the uniform channel arguments mapped onto its own.

        ``in_channels`` goes to the first parameter; ``out_channels=None`` is left to the
        class's default (which keeps C), or filled with ``in_channels`` when the class, like
        ``torch.nn.Conv2d``, requires it.
        """
        first = next(iter(self._parameters))
        args = {**self.defaults, **kwargs}
        if in_channels is not None:
            if first in kwargs:
                raise TypeError(f"{self.name}: got both in_channels={in_channels} and {first}={kwargs[first]} "
                                f"(in_channels is {self.target.__name__}'s {first})")
            args[first] = in_channels
        out = self._parameters.get("out_channels")
        if out_channels is not None:
            if out is None:
                raise TypeError(f"{self.name}: {self.target.__name__} takes no out_channels")
            args["out_channels"] = out_channels
        elif out is not None and out.default is inspect.Parameter.empty and "out_channels" not in args:
            args["out_channels"] = args.get(first)
        return self.target(**args)


_ENTRIES: dict[str, Entry] = {}
_LOOKUP: dict[str, str] = {}  # lower-case name or alias -> canonical name


def snake_case(class_name: str) -> str:
    """``ConvNN2d`` -> ``conv_nn2d``, ``N3Block2d`` -> ``n3_block2d``, ``CGNL1d`` -> ``cgnl1d``.

    A word starts at an upper-case letter after a lower-case letter or digit, or at the last
    capital of an acronym that is followed by a lower-case letter (``KNNBlock`` -> ``knn_block``).
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()


def register(target: type | None = None, *, family: str, example: Example, variant: str | None = None,
             aliases: Iterable[str] = (), **defaults: Any) -> Any:
    """Register a class (or, as a decorator, the decorated class) under its snake_case name.

    ``variant`` makes the entry a preset named ``<snake_case>_<variant>`` whose keyword
    ``defaults`` are applied before the caller's; a plain entry may carry ``defaults`` too
    (``conv2d``'s kernel). ``family`` groups names in listings; ``example`` is a small valid
    construction (see :class:`Example`); ``aliases`` are further names for the same entry.
    """

    def add(cls: type) -> type:
        name = snake_case(cls.__name__) + (f"_{variant}" if variant else "")
        entry = Entry(name, cls, dict(defaults), family, example, tuple(a.lower() for a in aliases))
        for key in (name, *entry.aliases):
            if key in _LOOKUP:
                raise ValueError(f"operator name {key!r} is already registered (for {_LOOKUP[key]!r})")
        _ENTRIES[name] = entry
        _LOOKUP.update(dict.fromkeys((name, *entry.aliases), name))
        return cls

    return add(target) if target is not None else add


def match(names: Iterable[str], pattern: str | None) -> list[str]:
    """The ``names`` that ``pattern`` selects, in their order; case-insensitive.

    A pattern with a wildcard character (``*?[``) is a shell-style wildcard over the whole
    name (``'conv*'``); any other pattern is a substring (``'attention'``). ``None`` keeps
    every name. The CLI's ``list`` and ``verify --filter`` both select with this.
    """
    names = list(names)
    if pattern is None:
        return names
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str or None, got {type(pattern).__name__}")
    p = pattern.lower()
    if any(c in p for c in WILDCARDS):
        return [n for n in names if fnmatch.fnmatchcase(n.lower(), p)]
    return [n for n in names if p in n.lower()]


def available(filter: str | None = None) -> list[str]:
    """Registered (canonical) names, sorted; ``filter`` as in :func:`match` (``'conv*'``, ``'attention'``)."""
    return match(sorted(_ENTRIES), filter)


def aliases(name: str) -> tuple[str, ...]:
    """The other names that ``name`` answers to."""
    return entry(name).aliases


def canonical(name: str) -> str:
    """The registered name that ``name`` (any case, or an alias) stands for."""
    return entry(name).name


def entry(name: str) -> Entry:
    """The :class:`Entry` of ``name``; an unknown name suggests the closest ones and lists the choices."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = _LOOKUP.get(name.lower())
    if key is None:
        close = difflib.get_close_matches(name.lower(), list(_LOOKUP), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(_LOOKUP[c]) for c in dict.fromkeys(close))}? " if close else ""
        raise ValueError(f"unknown operator name {name!r}; {hint}available: {', '.join(available())}")
    return _ENTRIES[key]


def family(name: str) -> str:
    """The family a registered name belongs to (e.g. ``'convolution'``, ``'attention'``)."""
    return entry(name).family


def example(name: str) -> Example:
    """The small valid construction registered with ``name``."""
    return entry(name).example


def constructor(name: str) -> Callable[..., nn.Module]:
    """The class registered under ``name`` (a ``functools.partial`` of it for a preset)."""
    return entry(name).constructor


def create(name: str, in_channels: int | None = None, out_channels: int | None = None, **kwargs: Any) -> nn.Module:
    """Build the operator registered under ``name``.

    Args:
        name: a registered name or alias, any case.
        in_channels: C of the input (the class's first parameter, e.g. ``embed_dim``).
        out_channels: channels of the output; ``None`` keeps C.
        kwargs: further constructor arguments (override the entry's defaults).
    """
    return entry(name).build(in_channels, out_channels, kwargs)
