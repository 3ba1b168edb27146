"""The table of fast paths: exact (selector type, combiner type) -> a native-kernel twin.

A fast path is registered by the module that defines it, with :func:`fast_path`, next to
the parts it specialises; this module knows no concrete selector or combiner. Each entry
has two halves:

* ``why_not(selector, combiner, x=None, **kwargs) -> str | None`` decides, from the
  configuration (and the forward keywords, e.g. an attention ``mask``), whether the native
  kernel computes exactly what the reference path computes: ``None`` if it does, else a
  sentence saying why not (shown by ``path='fast'`` errors and
  :meth:`~neighborhoods.NeighborAggregator.why_not_fast`);
* ``run(selector, combiner, x, **kwargs) -> Tensor`` computes it; it is only called when
  ``why_not`` returned ``None``.

Keys are exact types, never looked up along the MRO: a subclass may score or combine
differently (``ConcatAffinity`` is a ``DenseAffinity`` that no attention kernel computes),
so it gets a fast path only by registering its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

#: ``why_not(selector, combiner, x=None, **kwargs) -> str | None``
WhyNot = Callable[..., "str | None"]
#: ``run(selector, combiner, x, **kwargs) -> Tensor``
Run = Callable[..., Tensor]


@dataclass(frozen=True)
class FastPath:
    """One registered twin: the pair it serves, how it runs, when it applies, the kernel's name.

    ``kernel`` names the native op for a configuration, e.g. ``'F.conv2d'`` (a string, or a
    function of ``(selector, combiner)`` when the op depends on it, e.g. on the number of
    spatial axes).
    """

    selector: type
    combiner: type
    run: Run
    why_not: WhyNot
    kernel: str | Callable[[nn.Module, nn.Module], str]

    @property
    def name(self) -> str:
        """The twin's function name, e.g. ``'window_conv'``."""
        return self.run.__name__

    def kernel_name(self, selector: nn.Module, combiner: nn.Module) -> str:
        return self.kernel if isinstance(self.kernel, str) else self.kernel(selector, combiner)


_PATHS: dict[tuple[type, type], FastPath] = {}


def fast_path(selectors: type | tuple[type, ...], combiners: type | tuple[type, ...], *, why_not: WhyNot,
              kernel: str | Callable[[nn.Module, nn.Module], str]) -> Callable[[Run], Run]:
    """Register the decorated ``run`` for every exact pair of ``selectors`` x ``combiners``.

    Example::

        @fast_path(FixedSpatial, Conv1D, why_not=window_why_not, kernel="F.conv2d")
        def window_conv(selector, combiner, x): ...
    """
    selectors = selectors if isinstance(selectors, tuple) else (selectors,)
    combiners = combiners if isinstance(combiners, tuple) else (combiners,)
    for t in (*selectors, *combiners):
        if not isinstance(t, type):
            raise TypeError(f"fast_path takes selector and combiner classes, got {t!r}")
    if not callable(why_not):
        raise TypeError(f"why_not must be callable, got {type(why_not).__name__}")

    def add(run: Run) -> Run:
        for s in selectors:
            for c in combiners:
                if (s, c) in _PATHS:
                    raise ValueError(f"a fast path for ({s.__name__}, {c.__name__}) is already registered: "
                                     f"{_PATHS[(s, c)].name}")
                _PATHS[(s, c)] = FastPath(s, c, run, why_not, kernel)
        return run

    return add


def lookup(selector: nn.Module, combiner: nn.Module) -> FastPath | None:
    """The fast path registered for exactly ``(type(selector), type(combiner))``, if any."""
    return _PATHS.get((type(selector), type(combiner)))


def registered() -> dict[tuple[type, type], FastPath]:
    """Every registered pair and its fast path (a copy)."""
    return dict(_PATHS)


def why_not(selector: nn.Module, combiner: nn.Module, x: Tensor | None = None, **kwargs: Any) -> str | None:
    """``None`` if a registered fast path computes this configuration, else the reason it does not."""
    entry = lookup(selector, combiner)
    if entry is None:
        return (f"no fast path is registered for ({type(selector).__name__}, {type(combiner).__name__}); "
                f"only the reference path computes it")
    return entry.why_not(selector, combiner, x, **kwargs)
