"""Which path a layer takes: the native kernel (``'fast'``), the explicit neighbourhood
(``'reference'``), or the first when it applies (``'auto'``); and a context that sets it for
every layer inside it.

Precedence, highest first: ``layer(x, path=...)`` for one call; the innermost
:func:`use_path` block around the call; the layer's own ``path`` attribute (set at
construction, ``'auto'`` by default). So ``with use_path('reference'):`` turns a whole
network to the reference path, except calls that name their path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

from .checks import check_choice

#: which computation a layer runs (see the module docstring)
PathChoice = Literal["auto", "fast", "reference"]
PATHS: tuple[str, ...] = get_args(PathChoice)

# per thread, not a ContextVar: torch.compile traces and guards on a threading.local (a
# compiled layer recompiles when the block's path changes), while a ContextVar breaks the graph
class _State(threading.local):
    def __init__(self) -> None:
        # set on each thread's own instance, never read from a class default: a compiled layer
        # traced before any use_path block guarded on the class attribute and missed the
        # block's instance attribute later (no recompile, the fast path inside the block)
        self.path: str | None = None


_STATE = _State()


@contextmanager
def use_path(path: str) -> Iterator[None]:
    """Run every ``NeighborAggregator`` called inside the block on ``path``.

    ``path`` is ``'reference'``, ``'fast'`` or ``'auto'``. Blocks nest (the innermost wins)
    and are per thread: another thread's layers keep their own paths. An explicit
    ``forward(..., path=...)`` still wins over the block. Works under ``torch.compile``
    (``fullgraph=True`` included): the compiled layer is guarded on the block's path.

    Example::

        with neighborhoods.use_path("reference"):
            y = model(x)   # every layer through its explicit Neighborhood
    """
    path = check_choice("path", path, PATHS)
    outer = _STATE.path
    _STATE.path = path
    try:
        yield
    finally:
        _STATE.path = outer


def current_path() -> str | None:
    """The path set by the innermost :func:`use_path` block of this thread, or ``None`` outside any."""
    return _STATE.path


def resolve_path(explicit: str | None, attribute: str) -> str:
    """The path a call takes: ``explicit`` if given, else the block's, else the layer's ``attribute``."""
    if explicit is not None:
        return check_choice("path", explicit, PATHS)
    block = current_path()
    return block if block is not None else attribute
