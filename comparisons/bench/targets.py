"""The CPU targets of issues 10 and 20, read off saved ``neighbor-zoo bench`` JSON files.

Each target names the rows it compares (operator, size, mode, the two variants) and the
bound, an upper one (a time or memory ratio) or a lower one (a share of the matmul limit);
:func:`evaluate` finds those rows in the results and states the measured value, or
says that the rows were not measured. ``docs/performance.md`` shows :func:`markdown` of the
saved CPU runs, and a test checks that it matches them, so no number on the page is typed by
hand. Regenerate with ``python -m comparisons.bench.targets FILE.json ...``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .timing import MODES


@dataclass(frozen=True)
class Target:
    """``measure(ours) / measure(other) <= bound`` at one (operator, size, mode); or, with ``other=None``, ``measure(ours) <= bound``.

    ``at_least=True`` turns the bound into a lower one (``>=``).
    """

    goal: str
    operator: str
    size: int
    mode: str
    ours: str
    other: str | None
    measure: str  # "time_s", "peak_bytes" or "fraction_of_limit"
    bound: float
    at_least: bool = False


#: (goal, operator, sizes, modes, ours, other, measure, bound) of issue 10, item 6, on CPU
_CPU = [
    ("fixed-window Conv2d fast path <= 1.05x F.conv2d", "conv2d", (16, 32, 64), MODES, "fast", "native",
     "time_s", 1.05),
    ("ConvNN2d cosine k=9 <= 0.7x the public Conv2d_NN's time", "conv_nn2d", (32, 64), MODES, "fast", "peer",
     "time_s", 0.7),
    ("ConvNN2d cosine k=9 <= 0.5x the public Conv2d_NN's peak memory", "conv_nn2d", (32, 64), MODES, "fast", "peer",
     "peak_bytes", 0.5),
    ("ConvNN2d at 128x128, B=8: forward under 10 s", "conv_nn2d", (128,), ("forward",), "fast", None, "time_s", 10.0),
    ("ConvNN2d fwd+bwd at 64x64 >= 3x faster than the naive form", "conv_nn2d", (64,), ("forward+backward",), "fast",
     "naive", "time_s", 1 / 3),
    ("N3Block2d (paper's setting) faster than the all-pairs form", "n3_block2d", (80, 160), MODES, "fast", "naive",
     "time_s", 1.0),
    ("N3Block2d (paper's setting) at most the all-pairs form's memory", "n3_block2d", (80, 160), MODES, "fast",
     "naive", "peak_bytes", 1.0),
    ("N3Block2d >= 2x faster than the dense-distance (all-pairs) version", "n3_block2d", (80, 160), MODES, "fast",
     "naive", "time_s", 0.5),
    # issue 20 (performance round 2), items 1 and 2; its item 3 (N3 <= 0.5x all-pairs) is the row above
    ("issue 20: ConvNN2d forward >= 40% of the matmul limit", "conv_nn2d", (64,), ("forward",), "fast", None,
     "fraction_of_limit", 0.4, True),
    ("issue 20: ConvNN2d <= 0.45x the public Conv2d_NN's time", "conv_nn2d", (32, 64), MODES, "fast", "peer",
     "time_s", 0.45),
    ("issue 20: ConvNN2d at small sizes <= 1.0x the naive all-pairs form", "conv_nn2d", (8, 16), MODES, "fast",
     "naive", "time_s", 1.0),
]


def cpu_targets() -> list[Target]:
    """The CPU targets of issue 10, item 6, and issue 20 (the GPU ones wait for a device), one per size and mode."""
    return [Target(goal, op, size, mode, ours, other, measure, *bound)
            for goal, op, sizes, modes, ours, other, measure, *bound in _CPU for size in sizes for mode in modes]


def _row(results: list[dict[str, Any]], t: Target, variant: str) -> dict[str, Any] | None:
    return next((r for r in results if (r["operator"], r["size"], r["mode"], r["variant"])
                 == (t.operator, t.size, t.mode, variant) and r["time_s"] is not None), None)


def evaluate(results: list[dict[str, Any]], targets: list[Target] | None = None) -> list[dict[str, Any]]:
    """One dict per target: the measured value (a ratio, or seconds), whether it meets the bound, or why unmeasured."""
    rows = []
    for t in targets or cpu_targets():
        ours = _row(results, t, t.ours)
        other = None if t.other is None else _row(results, t, t.other)
        value = None
        if ours is not None and (t.other is None or other is not None):
            value = ours[t.measure] / (other[t.measure] if other is not None else 1.0)
        missing = [v for v, r in ((t.ours, ours), (t.other, other)) if v is not None and r is None]
        met = None if value is None else (value >= t.bound if t.at_least else value <= t.bound)
        rows.append({"target": t, "value": value, "met": met, "missing": missing})
    return rows


def _fmt(t: Target, value: float | None) -> str:
    """A measured value or a bound: a percentage of the matmul limit, seconds for an absolute time, a ratio otherwise."""
    if value is None:
        return "-"
    if t.measure == "fraction_of_limit":
        return f"{100 * value:.1f}%"
    return f"{value:.2f} s" if t.other is None else f"{value:.2f}x"


def markdown(results: list[dict[str, Any]]) -> str:
    """The targets as a Markdown table: goal, where, measured, bound, met."""
    lines = ["| target | size | mode | measured | bound | met |", "|---|---|---|---:|---:|---|"]
    for row in evaluate(results):
        t = row["target"]
        met = ("not measured (no " + ", ".join(row["missing"]) + " row)") if row["value"] is None else \
            ("yes" if row["met"] else "**no**")
        bound = (">= " if t.at_least else "") + _fmt(t, t.bound)
        lines.append(f"| {t.goal} | {t.size}x{t.size} | {t.mode} | {_fmt(t, row['value'])} | {bound} "
                     f"| {met} |")
    return "\n".join(lines)


def load_results(paths: list[Path]) -> list[dict[str, Any]]:
    """The result rows of several bench JSON files, in order."""
    return [r for p in paths for r in json.loads(Path(p).read_text())["results"]]


if __name__ == "__main__":  # python -m comparisons.bench.targets docs/results/bench-cpu*.json
    print(markdown(load_results([Path(p) for p in sys.argv[1:]])))
