"""Timing one variant: warm-up, then ``torch.utils.benchmark``'s blocked autorange; and the device's matmul limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils import benchmark

from .memory import peak_bytes
from .workloads import Variant

MODES = ("forward", "forward+backward")


@dataclass(frozen=True)
class Measurement:
    """Median seconds per call, the interquartile range, how many calls were timed, and the peak bytes."""

    median_s: float
    iqr_s: float
    runs: int
    peak_bytes: int


def _call(variant: Variant, x: Tensor, mode: str) -> Callable[[], object]:
    """A no-argument function running one forward (no autograd) or one forward + backward."""
    if mode == "forward":
        def forward() -> Tensor:
            with torch.no_grad():
                return variant.forward(x)
        return forward
    leaf = x.detach().requires_grad_(True)
    with torch.no_grad():
        grad = torch.randn_like(variant.forward(x))

    def step() -> None:
        for p in (leaf, *variant.parameters):
            p.grad = None
        variant.forward(leaf).backward(grad)
    return step


def measure(variant: Variant, x: Tensor, mode: str, min_run_time: float) -> Measurement:
    """Time ``variant`` on ``x``: one call for the peak memory (it doubles as warm-up), one more warm-up, then blocks."""
    fn = _call(variant, x, mode)
    peak = peak_bytes(fn, x.device)
    fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return Measurement(m.median, m.iqr, len(m.times) * m.number_per_run, peak)


def matmul_limit(device: torch.device, dtype: torch.dtype, size: int, min_run_time: float) -> float:
    """Measured FLOP/s of one ``size x size`` matrix product: the device's practical limit for this dtype."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    m = benchmark.Timer(stmt="a @ b", globals={"a": a, "b": b},
                        num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=min_run_time)
    return 2.0 * size ** 3 / m.median
