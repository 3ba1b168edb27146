"""A catalogue of the zoo: names -> constructors, like timm's model registry.

``create("convnn2d", in_channels=3, out_channels=16)`` builds a layer by name;
``available("conv*")`` lists names (sorted, shell-style wildcard). A preset is a
``functools.partial`` of a class, registered under its own name.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from torch import nn

@dataclass(frozen=True)
class Example:
    """A small, valid construction of an operator and an input for it.

    The registry-driven tests build every operator from its example (shape, NaN, backward,
    state_dict, repr checks) and the CLI uses it to show what a layer selects.
    """

    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]


_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_FAMILY: dict[str, str] = {}
_EXAMPLE: dict[str, Example] = {}


def register(name: str, constructor: Callable[..., nn.Module] | None = None, *, family: str,
             example: Example, **defaults: Any) -> Any:
    """Register ``constructor`` (or, as a decorator, the decorated class) under ``name``.

    ``family`` groups names in listings (``'convolution'``, ``'attention'``, ...);
    ``example`` is a small valid construction (see :class:`Example`). Keyword ``defaults``
    make the entry a preset: ``functools.partial(constructor, **defaults)``.
    """

    def add(ctor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"operator name {name!r} is already registered")
        _REGISTRY[name] = functools.partial(ctor, **defaults) if defaults else ctor
        _FAMILY[name] = family
        _EXAMPLE[name] = example
        return ctor

    return add(constructor) if constructor is not None else add


def available(filter: str | None = None) -> list[str]:
    """Registered names, sorted; ``filter`` is a shell-style wildcard such as ``'conv*'``."""
    names = sorted(_REGISTRY)
    return names if filter is None else [n for n in names if fnmatch.fnmatchcase(n, filter)]


def family(name: str) -> str:
    """The family a registered name belongs to (e.g. ``'convolution'``, ``'attention'``)."""
    constructor(name)
    return _FAMILY[name]


def example(name: str) -> Example:
    """The small valid construction registered with ``name``."""
    constructor(name)
    return _EXAMPLE[name]


def constructor(name: str) -> Callable[..., nn.Module]:
    """The constructor registered under ``name``; an unknown name lists the choices."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown operator name {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build the operator registered under ``name`` with constructor arguments ``kwargs``."""
    return constructor(name)(**kwargs)
