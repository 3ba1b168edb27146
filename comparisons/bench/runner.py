"""Run the workloads and collect the results as one JSON-ready dict."""

from __future__ import annotations

import datetime
import platform
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .profile import stage_shares
from .report import fraction, growth_exponents
from .timing import matmul_limit, measure
from .workloads import WORKLOADS, Settings, Workload

#: called before every measurement with a description of it (drives the progress bar)
Progress = Callable[[str], None]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({torch.get_num_threads()} threads)"


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def plan(operators: Sequence[str], sizes: Sequence[int], n3_sizes: Sequence[int]) -> list[tuple[str, int]]:
    """The (operator, size) pairs to run: N3 at its own sizes, every other operator at ``sizes``."""
    return [(op, size) for op in operators for size in (n3_sizes if op.startswith("n3") else sizes)]


def _rows(w: Workload, mode: str, settings: Settings, limit: float, min_run_time: float,
          step: Progress) -> list[dict[str, Any]]:
    flops = w.flops * (3 if mode == "forward+backward" else 1)
    rows = [{"operator": w.operator, "size": w.size, "tokens": w.size * w.size, "mode": mode, "variant": v.name,
             "flops": flops, "recall": w.recall, "skip": v.skip, "estimated_bytes": v.estimated_bytes,
             "time_s": None, "iqr_s": None, "runs": 0, "peak_bytes": None, "tflops": None,
             "fraction_of_limit": None, "ratio": None, "baseline": w.baseline} for v in w.variants]
    timed = [(row, v) for row, v in zip(rows, w.variants) if v.skip is None]
    for v in w.variants:
        if v.skip is not None:
            step(f"{w.operator} {w.size}x{w.size} {mode} {v.name} (skipped)")
    measurements = measure([v for _, v in timed], w.x, mode, min_run_time,
                           lambda name: step(f"{w.operator} {w.size}x{w.size} {mode} {name}"))
    for (row, _), m in zip(timed, measurements):
        row.update(time_s=m.median_s, iqr_s=m.iqr_s, runs=m.runs, peak_bytes=m.peak_bytes,
                   tflops=flops / m.median_s / 1e12, fraction_of_limit=fraction(flops / m.median_s, limit))
    base = next((r for r in rows if r["variant"] == w.baseline and r["time_s"] is not None), None)
    for r in rows:
        if base is not None and r["time_s"] is not None:
            r["ratio"] = r["time_s"] / base["time_s"]
    return rows


#: the meta fields that must agree for rows of an earlier run to be reused by ``--resume``
RESUME_KEYS = ("device", "dtype", "batch", "channels", "k", "min_run_time_s", "memory_cap_bytes", "seed", "peer_dir")


def settings_meta(settings: Settings, min_run_time: float) -> dict[str, Any]:
    """The fields of ``meta`` named in :data:`RESUME_KEYS`, for these settings."""
    return {"device": str(settings.device), "dtype": str(settings.dtype).removeprefix("torch."),
            "batch": settings.batch, "channels": settings.channels, "k": settings.k, "min_run_time_s": min_run_time,
            "memory_cap_bytes": settings.memory_cap, "seed": settings.seed, "peer_dir": settings.peer_dir}


def reusable_rows(previous: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of an earlier run's JSON that this run may keep, or a ``ValueError`` naming what differs."""
    old = previous.get("meta", {})
    differ = [f"{key}: {old.get(key)!r} then, {meta.get(key)!r} now" for key in RESUME_KEYS
              if old.get(key) != meta.get(key)]
    if differ:
        raise ValueError("cannot resume: the earlier run used other settings (" + "; ".join(differ) + ")")
    return list(previous.get("results", []))


def run_bench(settings: Settings, operators: Sequence[str], sizes: Sequence[int], n3_sizes: Sequence[int],
              modes: Sequence[str], min_run_time: float = 0.5, matmul_size: int = 2048,
              step: Progress = lambda description: None, previous: dict[str, Any] | None = None,
              save: Callable[[dict[str, Any]], None] | None = None, profile: bool = False) -> dict[str, Any]:
    """Time every (operator, size, mode, variant); return ``{"meta", "results", "growth", "notes"}``.

    ``step`` is called before each measurement with what is about to run (for a progress bar).
    ``save`` receives the data so far after every workload (the CLI writes it atomically), so
    an interrupted run keeps what it measured; ``previous``, such a file's data, supplies the
    (operator, size, mode) rows it already holds when its settings match
    (:func:`reusable_rows`), and only the rest is measured. ``profile`` adds ``"profile"``: per
    operator, size and variant (fast, reference) the forward time's shares by stage
    (:func:`~.profile.stage_shares`), measured after the workload's timings.
    """
    unknown = [op for op in operators if op not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown bench operators {unknown}; choose from {sorted(WORKLOADS)}")
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(), "torch": torch.__version__, "device_name": _device_name(settings.device),
        "threads": torch.get_num_threads(), **settings_meta(settings, min_run_time), "matmul_size": matmul_size,
        "flops_convention": "multiply-add = 2 FLOPs; forward+backward = 3 x forward",
        "memory_method": ("CUDA: torch.cuda.max_memory_allocated minus memory allocated before the call"
                          if settings.device.type == "cuda" else
                          "CPU: live tensor storage bytes counted by a TorchDispatchMode (comparisons.bench.memory)"),
        "timing_method": "per variant one warm-up call (measured for memory) and one more; then up to 5 rounds in "
                         "which every variant of the workload gets torch.utils.benchmark.Timer.blocked_autorange in "
                         "turn (interleaved); time_s is the median over all blocks",
        "ratio": "time_s / time_s of the workload's baseline variant (native op or naive all-pairs form)",
        "matmul_method": "one size^3 product, blocked_autorange median, read at the start and after every "
                         "workload and mode (matmul_tflops_readings, in order); a row's limit (its matmul_tflops) is "
                         "the faster of the readings just before and just after it; meta matmul_tflops the fastest",
    }
    kept = reusable_rows(previous, meta) if previous else []
    done = {(r["operator"], r["size"], r["mode"]) for r in kept}
    step(f"matmul limit ({matmul_size}^3)")
    limit = matmul_limit(settings.device, settings.dtype, matmul_size, min_run_time)
    readings = [limit / 1e12]
    meta.update(matmul_tflops=limit / 1e12, matmul_tflops_readings=readings, flops_formulas=dict(previous["meta"].get("flops_formulas", {}))
                if previous else {})
    results, notes = [], list(previous.get("notes", [])) if previous else []
    shares: list[dict[str, Any]] = []

    def data() -> dict[str, Any]:
        out = {"meta": meta, "results": results, "growth": growth_exponents(results), "notes": notes}
        if profile:
            out["profile"] = shares
        return out

    for op, size in plan(operators, sizes, n3_sizes):
        todo = [mode for mode in modes if (op, size, mode) not in done]
        results += [r for mode in modes if mode not in todo for r in kept
                    if (r["operator"], r["size"], r["mode"]) == (op, size, mode)]
        if not todo and not profile:
            continue
        step(f"{op} {size}x{size} setup")
        w = WORKLOADS[op](settings, size)
        meta["flops_formulas"][op] = w.flops_formula
        notes += [f"{op}: {n}" for n in w.notes if f"{op}: {n}" not in notes]
        for mode in todo:
            rows = _rows(w, mode, settings, limit, min_run_time, step)
            # the limit read again after the rows: the product's speed drifts with the machine
            # (0.10 to 0.18 TFLOP/s within one run on a 2-core EPYC), and a limit read in a slow
            # moment would flatter a fraction. Each row's limit is the faster of the readings
            # just before and just after it, so its fraction does not overstate
            step(f"matmul limit ({matmul_size}^3)")
            after = matmul_limit(settings.device, settings.dtype, matmul_size, min_run_time)
            readings.append(after / 1e12)
            local = max(limit, after)
            for r in rows:
                r["matmul_tflops"] = local / 1e12
                if r["tflops"] is not None:
                    r["fraction_of_limit"] = fraction(r["tflops"] * 1e12, local)
            limit = after
            meta.update(matmul_tflops=max(readings), matmul_tflops_readings=readings)
            results += rows
            if save is not None:
                save(data())
        if profile:
            step(f"{op} {size}x{size} profile")
            shares.extend(stage_shares(w))
            if save is not None:
                save(data())
        del w
    return data()


__all__ = ["plan", "reusable_rows", "run_bench", "settings_meta"]
