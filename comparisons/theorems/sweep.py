"""A theorem over many seeds: the worst seed, or the exception that stopped it.

:func:`~comparisons.theorems.base.verify` runs one seed and lets a broken check raise (with
its traceback, as the test suite wants). :func:`sweep` is what ``neighbor-zoo verify`` runs:
it keeps going past a theorem that raises, so one bad plugin still leaves a full table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .base import Theorem, Verdict, verify


def _severity(verdict: Verdict) -> float:
    """Sort key for 'worst': the largest error / tolerance; no trials rank above everything."""
    worst = verdict.worst
    return math.inf if worst is None else verdict.ratio(worst)


@dataclass(frozen=True)
class Sweep:
    """One theorem over several seeds.

    ``verdicts`` maps each seed that ran to its verdict; ``failure`` is ``(seed, "Type:
    message")`` for the seed whose check raised (the sweep stops there), else ``None``.
    """

    theorem: Theorem
    verdicts: dict[int, Verdict]
    failure: tuple[int, str] | None = None

    @property
    def worst(self) -> tuple[int, Verdict] | None:
        """``(seed, verdict)`` with the largest error, or ``None`` when no seed completed."""
        if not self.verdicts:
            return None
        return max(self.verdicts.items(), key=lambda item: _severity(item[1]))

    @property
    def passed(self) -> bool:
        return self.failure is None and bool(self.verdicts) and all(v.passed for v in self.verdicts.values())


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: message"``: the type and the message, on one line."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def sweep(thm: Theorem, seeds: Iterable[int], dtype: torch.dtype = torch.float64,
          on_seed: Callable[[int], None] | None = None) -> Sweep:
    """Verify ``thm`` for each seed in order; an exception ends the sweep as its ``failure``.

    ``on_seed(seed)`` is called after each seed (a progress bar's advance).
    """
    verdicts: dict[int, Verdict] = {}
    for seed in seeds:
        try:
            verdicts[seed] = verify(thm, seed, dtype)
        except Exception as exc:  # a broken check is a result to report, not a crash of the table
            return Sweep(thm, verdicts, (seed, describe_exception(exc)))
        finally:
            if on_seed is not None:
                on_seed(seed)
    return Sweep(thm, verdicts)
