"""Named stages of a layer's computation, visible to ``torch.profiler`` (``neighbor-zoo bench --profile``).

A layer's time splits into **similarity** (scoring token pairs), **selection** (choosing
neighbours from the scores: top-k, masks), **gathering** (reading the chosen neighbours'
features) and **combining** (the weights that mix them: a GEMM, a convolution); a native
kernel that does several at once (``F.scaled_dot_product_attention``) is **fused**.
``with stage("selection"): ...`` labels a block as a ``torch.profiler`` range
``neighbor-zoo:selection``; outside a profiler it costs one flag test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: the stages, in the order a layer runs them
STAGES = ("similarity", "selection", "gathering", "combining", "fused")
#: the profiler range names: ``PREFIX + stage``
PREFIX = "neighbor-zoo:"


@contextlib.contextmanager
def _labelled(name: str) -> Iterator[None]:
    with torch.profiler.record_function(PREFIX + name):
        yield


_NOTHING = contextlib.nullcontext()


def stage(name: str) -> contextlib.AbstractContextManager:
    """A ``record_function`` range for stage ``name`` while a profiler records, else a no-op context."""
    if torch.autograd.profiler._is_profiler_enabled and not torch.compiler.is_compiling():
        return _labelled(name)
    return _NOTHING
