"""Theorems the library claims, as runnable checks.

A theorem compares two independent computations (ours against torch's native op, or a
reference path against a fast path) on fresh random inputs, forward and gradients. Each
check function yields one :class:`Trial` per configuration it tries; ``neighbor-zoo verify``
and the test suite run them all.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from operators.registry import match

#: Absolute tolerance per dtype unless a theorem states its own.
DEFAULT_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}


@dataclass(frozen=True)
class Trial:
    """One configuration of a theorem: what was compared and the largest scaled difference.

    ``tolerance``, when given, replaces the theorem's tolerance for this trial alone: a bound
    the check derived from this input's conditioning (say so in the theorem's docstring).
    """

    shapes: str
    error: float
    tolerance: float | None = None


@dataclass(frozen=True)
class Theorem:
    name: str
    statement: str
    check: Callable[[torch.Generator, torch.dtype], Iterable[Trial]]
    tolerance: dict[torch.dtype, float]


@dataclass(frozen=True)
class Verdict:
    theorem: Theorem
    trials: tuple[Trial, ...]
    tolerance: float

    def bound(self, trial: Trial) -> float:
        """The tolerance ``trial`` is held to: its own, else the theorem's."""
        return self.tolerance if trial.tolerance is None else trial.tolerance

    @property
    def error(self) -> float:
        return max(t.error for t in self.trials)

    @property
    def worst(self) -> Trial | None:
        """The trial closest to (or furthest past) its tolerance; NaN ranks first."""
        return max(self.trials, key=self.ratio, default=None)

    def ratio(self, trial: Trial) -> float:
        """``error / tolerance`` of ``trial`` (inf for NaN)."""
        bound = self.bound(trial)
        if math.isnan(trial.error):
            return math.inf
        if bound <= 0:
            return 0.0 if trial.error <= 0 else math.inf
        return trial.error / bound

    @property
    def passed(self) -> bool:
        # `not >` so that a NaN error fails
        return len(self.trials) > 0 and all(t.error <= self.bound(t) for t in self.trials)


THEOREMS: dict[str, Theorem] = {}


def theorem(name: str, statement: str, *, float64: float | None = None, float32: float | None = None):
    """Register a check as a theorem named ``name`` (a decorator).

    The check is ``fn(generator, dtype) -> Iterable[Trial]``: it draws every random input from
    ``generator`` (so ``--seed`` reproduces them; layers initialise from torch's global
    generator, which :func:`verify` seeds too), builds both computations in ``dtype``, and
    yields one :class:`Trial` per configuration, usually with the error from
    :func:`max_error`. ``statement`` is the one-line claim ``neighbor-zoo verify --list``
    prints. ``float64`` / ``float32`` override the default tolerances on that error
    (``DEFAULT_TOLERANCE``: 1e-10 and 1e-4); state why when you loosen one.

    Example::

        @theorem("mine.relu==clamp", "relu(x) equals clamp(x, min=0)")
        def relu_is_clamp(generator, dtype):
            x = randn(generator, 4, 5, dtype=dtype)
            yield Trial(describe(x=x.shape), max_error(lambda: x.relu(), lambda: x.clamp(min=0), [x], generator))
    """

    def add(fn: Callable[[torch.Generator, torch.dtype], Iterable[Trial]]):
        # the same module registering again is a reload (a plugin loaded twice, a notebook cell
        # run again): it replaces its theorem; another module's name is a clash
        where = THEOREMS[name].check.__module__ if name in THEOREMS else None
        if where is not None and where != fn.__module__:
            raise ValueError(f"theorem {name!r} is already registered (by {where}); pick another name")
        tol = dict(DEFAULT_TOLERANCE)
        if float64 is not None:
            tol[torch.float64] = float64
        if float32 is not None:
            tol[torch.float32] = float32
        THEOREMS[name] = Theorem(name, statement, fn, tol)
        return fn

    return add


def select(filter: str | None = None) -> list[Theorem]:
    """Registered theorems, sorted by name; ``filter`` is a substring or a shell wildcard
    (case-insensitive, see :func:`operators.registry.match`)."""
    return [THEOREMS[n] for n in match(sorted(THEOREMS), filter)]


def verify(thm: Theorem, seed: int = 0, dtype: torch.dtype = torch.float64) -> Verdict:
    """Run one theorem's trials on fresh random inputs drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # torch's own conv warns that 'same' with an even kernel pads a copy: expected, not news
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        torch.manual_seed(seed)  # layers initialise their parameters from the global generator
        trials = tuple(thm.check(generator, dtype))
    return Verdict(thm, trials, thm.tolerance[dtype])


# ---- helpers for writing checks ---------------------------------------------------------------
def randn(generator: torch.Generator, *shape: int, dtype: torch.dtype, requires_grad: bool = True) -> Tensor:
    """A standard-normal tensor of ``shape`` drawn from ``generator``; a leaf that requires grad
    unless ``requires_grad=False``, so :func:`max_error` can compare gradients through it."""
    return torch.randn(*shape, generator=generator, dtype=dtype).requires_grad_(requires_grad)


def scaled_error(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max(1, max |b|)``: the absolute error of O(1) quantities, relative above 1.

    Round-off grows with magnitude, and some gradients are large (through a BatchNorm on a
    tiny batch they reach 1e2 to 1e3), so one float32 tolerance only means something against
    the reference's scale. NaN propagates (and fails every tolerance).
    """
    if a.shape != b.shape:
        return float("inf")
    if a.numel() == 0:
        return 0.0
    return ((a - b).abs().max() / b.abs().max().clamp_min(1)).item()


def max_error(a: Callable[[], Tensor], b: Callable[[], Tensor], wrt: Sequence[Tensor],
              generator: torch.Generator, *, a_params: Sequence[Tensor | Sequence[Tensor]] = (),
              b_params: Sequence[Tensor] = ()) -> float:
    """Largest :func:`scaled_error` between ``a()`` and ``b()`` and between their gradients.

    Both are back-propagated with the same random cotangent. Gradients are compared for every
    tensor in ``wrt`` (inputs and parameters both sides share) and, pairwise, for each side's
    own parameters when the two computations hold distinct copies (ours vs a torch module):
    ``a_params[i]`` pairs with ``b_params[i]``; an entry of ``a_params`` that is a list is
    concatenated along dim 0 first (torch's packed ``in_proj_weight`` = [W_q; W_k; W_v]).
    """
    if len(a_params) != len(b_params):
        return float("inf")
    out_a, out_b = a(), b()
    if out_a.shape != out_b.shape:
        return float("inf")
    err = scaled_error(out_a, out_b)
    groups = [list(p) if isinstance(p, (list, tuple)) else [p] for p in a_params]
    own_a = [p for group in groups for p in group]
    if not wrt and not own_a:
        return err
    cot = torch.randn(out_a.shape, generator=generator, dtype=out_a.dtype)
    grads_a = torch.autograd.grad(out_a, [*wrt, *own_a], cot, allow_unused=True)
    grads_b = torch.autograd.grad(out_b, [*wrt, *b_params], cot, allow_unused=True)
    shared_a, rest = grads_a[:len(wrt)], list(grads_a[len(wrt):])
    packed = []
    for group in groups:
        parts, rest = rest[:len(group)], rest[len(group):]
        packed.append(None if any(g is None for g in parts) else torch.cat(parts, 0))
    for ga, gb in zip([*shared_a, *packed], grads_b):
        if (ga is None) != (gb is None):
            return float("inf")
        if ga is not None:
            err = max(err, scaled_error(ga, gb))
    return err


def describe(**shapes: Iterable[int] | int | str) -> str:
    """``x=(2, 3, 8, 8) k=3`` style text for a trial's shapes column."""
    return " ".join(f"{k}={tuple(v) if isinstance(v, (torch.Size, list)) else v}" for k, v in shapes.items())
