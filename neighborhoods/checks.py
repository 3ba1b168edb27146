"""Argument validation shared by every layer (public: a layer of your own can reuse it).

Each helper raises a ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
wrong value) whose message names the argument, what was expected and what was given, so
that a user never has to guess which of a layer's many arguments was wrong.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` as an ``int`` (bools rejected), optionally ``>= minimum``.

    Integers are Python ints, numpy's integer scalars and 0-d integer tensors (what indexing
    a tensor or ``argmax`` returns), as ``operator.index`` takes them.
    """
    if isinstance(value, Tensor) and value.ndim == 0 and not value.is_floating_point() \
            and not value.is_complex() and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value}")
    return value


def check_int_tuple(name: str, value: Any, length: int, *, minimum: int | None = None) -> tuple[int, ...]:
    """An int or a sequence of ``length`` ints, returned as a tuple of ``length`` ints."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != length:
            raise ValueError(f"{name} must have {length} entries, got {name}={tuple(value)!r}")
        return tuple(check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(value))
    return (check_int(name, value, minimum=minimum),) * length


def check_float(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    """A finite real number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {name}={value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {name}={value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {name}={value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices`` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {name}={value!r}")
    return value


def check_tensor(name: str, x: Any, *, ndim: int | Sequence[int] | None = None,
                 floating: bool = True) -> Tensor:
    """A tensor of the given rank(s); floating point unless ``floating=False``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ranks:
            want = " or ".join(str(r) for r in ranks)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)} ({x.ndim} dimensions)")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_channels(name: str, x: Tensor, expected: int, *, dim: int = 1, argument: str = "in_channels") -> None:
    """``x.shape[dim] == expected``, the layer's ``argument`` (e.g. ``in_channels``)."""
    if x.shape[dim] != expected:
        raise ValueError(f"{name} must have {expected} channels in dim {dim}, "
                         f"got shape {tuple(x.shape)} with {x.shape[dim]} (the layer's {argument}={expected})")


def check_like(name: str, x: Tensor, reference: Tensor, reference_name: str) -> None:
    """``x`` has the dtype and device of a layer's parameter ``reference``."""
    if x.dtype != reference.dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but {reference_name} has dtype {reference.dtype}; "
                        f"cast one of them (e.g. module.to({x.dtype}))")
    if x.device != reference.device:
        raise ValueError(f"{name} is on device {x.device} but {reference_name} is on {reference.device}; "
                         f"move one of them")


def check_divisible(name: str, value: int, divisor_name: str, divisor: int) -> None:
    """``value % divisor == 0``, with ``divisor >= 1`` checked first (named, not a ZeroDivisionError)."""
    check_int(divisor_name, divisor, minimum=1)
    if value % divisor != 0:
        raise ValueError(f"{name} must be divisible by {divisor_name}, got {name}={value}, {divisor_name}={divisor}")


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a ``bool`` (``0``/``1`` and other truthy things are rejected)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")
    return value
