"""Timing one variant: warm-up, then ``torch.utils.benchmark``'s blocked autorange; and the device's matmul limit."""

from __future__ import annotations

import time
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


#: at most this many interleaved rounds per (workload, mode)
ROUNDS = 5
#: at least this many, even when one call outlasts a round's share of ``min_run_time``: with a single
#: round, a slow spell of the machine fell on whichever variant was being timed (ConvNN2d 32x32
#: forward + backward read 0.38x and 0.63x the public code in two runs of one afternoon, one round each)
MIN_ROUNDS = 3


def measure(variants: list[Variant], x: Tensor, mode: str, min_run_time: float,
            step: Callable[[str], None] = lambda description: None) -> list[Measurement]:
    """Time ``variants`` on ``x`` side by side, interleaved, so that a slow spell of the machine hits them alike.

    Each variant: one call for the peak memory (it doubles as warm-up), one more warm-up whose
    wall time sets the rounds. Then :data:`MIN_ROUNDS` to :data:`ROUNDS` rounds (the fewer the
    longer a call, relative to ``min_run_time / ROUNDS``), each giving every variant
    ``min_run_time / rounds`` of ``torch.utils.benchmark``'s blocked autorange in turn (at least
    one call, so slow variants take longer than ``min_run_time``); the median and IQR are over
    all of a variant's blocks.
    """
    calls, peaks, slowest = [], [], 0.0
    for v in variants:
        step(v.name)  # once per variant: the progress bar counts variants
        fn = _call(v, x, mode)
        peaks.append(peak_bytes(fn, x.device))
        start = time.perf_counter()
        fn()
        _sync(x.device)
        slowest = max(slowest, time.perf_counter() - start)
        calls.append(fn)
    rounds = max(MIN_ROUNDS, min(ROUNDS, int(min_run_time / max(slowest, 1e-9) / ROUNDS)))
    blocks: list[list[float]] = [[] for _ in variants]
    runs = [0] * len(variants)
    for _ in range(rounds):
        for i, (v, fn) in enumerate(zip(variants, calls)):
            timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
            m = timer.blocked_autorange(min_run_time=min_run_time / rounds)
            blocks[i] += m.times
            runs[i] += len(m.times) * m.number_per_run
    out = []
    for times, n, peak in zip(blocks, runs, peaks):
        q = torch.tensor(times, dtype=torch.float64).quantile(torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
        out.append(Measurement(float(q[1]), float(q[2] - q[0]), n, peak))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_limit(device: torch.device, dtype: torch.dtype, size: int, min_run_time: float) -> float:
    """Measured FLOP/s of one ``size x size`` matrix product: the device's practical limit for this dtype."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    m = benchmark.Timer(stmt="a @ b", globals={"a": a, "b": b},
                        num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=min_run_time)
    return 2.0 * size ** 3 / m.median
