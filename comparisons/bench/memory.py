"""Peak memory of a callable: CUDA's allocator statistics, or live-tensor accounting on CPU.

CUDA: ``torch.cuda.max_memory_allocated`` after a reset, minus what was allocated before
the call (inputs and weights are not counted).

CPU has no allocator statistics in torch, so :class:`LiveTensorBytes` counts them itself: a
``TorchDispatchMode`` sees every aten op; each output's storage is recorded once (views and
in-place results share their input's storage and add nothing) and dropped when its last
reference dies (a weak reference to the storage, polled at every op). The peak of the
running sum is the largest amount of tensor memory the call held at once beyond its inputs,
including what autograd saves for the backward pass. It does not see scratch buffers that a
kernel allocates and frees inside one op (e.g. a BLAS workspace), so it is a lower bound on
the process's true peak by at most one op's scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created under it; ``peak`` is the largest total held at once.

    Example::

        with LiveTensorBytes() as mem:
            y = f(x)
        mem.peak, mem.largest  # bytes
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        #: storages that existed before (inputs, weights): views of them add nothing
        self._external: dict[int, StorageWeakRef] = {}
        self.current = 0
        self.peak = 0
        #: bytes of the largest single storage created (what a "no N x N tensor" test checks)
        self.largest = 0

    def _collect(self) -> None:
        dead = [key for key, (ref, _) in self._live.items() if ref.expired()]
        for key in dead:
            self.current -= self._live.pop(key)[1]

    def live_bytes(self) -> int:
        """Bytes held now (storages freed since the last op are dropped first)."""
        self._collect()
        return self.current

    def __exit__(self, *exc: Any) -> Any:
        self._collect()
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                ref = StorageWeakRef(t.untyped_storage())
                known = self._external.get(ref.cdata)
                if ref.cdata not in self._live and (known is None or known.expired()):
                    self._external[ref.cdata] = ref
        out = func(*args, **(kwargs or {}))
        self._collect()
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                ref = StorageWeakRef(storage)
                external = self._external.get(ref.cdata)
                if external is not None and not external.expired():
                    continue
                if ref.cdata not in self._live:
                    size = storage.nbytes()
                    self._live[ref.cdata] = (ref, size)
                    self.current += size
                    self.largest = max(self.largest, size)
        self.peak = max(self.peak, self.current)
        return out


def peak_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    """Bytes of memory ``fn()`` held at its peak beyond what existed before it (its output included).

    CUDA: the caching allocator's ``max_memory_allocated``; CPU: :class:`LiveTensorBytes`.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        del out
        return torch.cuda.max_memory_allocated(device) - before
    with LiveTensorBytes() as mem:
        out = fn()
        del out
    return mem.peak
