"""Plots of the saved ablation and benchmark results under ``docs/results/``.

Drawn only from committed data: ``compare-*/`` folders, read by the ablation's own loader
(:func:`comparisons.ablation.collect`: one record per finished epoch of a ``neighbor-zoo
compare`` run) and ``bench-cpu.json`` (``neighbor-zoo bench``, plotted by the bench's own
``plot``). A folder that is not there draws nothing; a folder that is there but unreadable
is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from comparisons.ablation import RunRecord, collect

from .plotting import plt, save

BENCH_FILE = "bench-cpu.json"


def read_runs(folder: Path) -> dict[str, dict[int, list[RunRecord]]]:
    """``operator -> seed -> records sorted by epoch`` of one compare folder, operators in sweep order.

    Reads the folder's ``runs/*/records.jsonl`` and merged ``results.jsonl`` with the ablation's
    loader (which refuses two copies of an epoch that disagree).
    """
    records = sorted(collect([folder]), key=lambda r: (r.index, r.seed, r.epoch))
    runs: dict[str, dict[int, list[RunRecord]]] = {}
    for r in records:
        runs.setdefault(r.operator, {}).setdefault(r.seed, []).append(r)
    return runs


def summary(folder: Path) -> list[dict[str, Any]]:
    """Per operator: parameters, final metric mean and std over seeds, seeds, and whether every run finished.

    What ``docs/ablations.md`` tabulates (a test checks the page against it).
    """
    rows = []
    for name, seeds in read_runs(folder).items():
        finals = np.array([records[-1].value for records in seeds.values()], dtype=np.float64)
        rows.append(dict(operator=name, parameters=next(iter(seeds.values()))[-1].parameters,
                         metric=next(iter(seeds.values()))[-1].metric, mean=float(finals.mean()),
                         std=float(finals.std(ddof=1)) if len(finals) > 1 else 0.0, seeds=len(finals),
                         label=_label(name, seeds)))
    return rows


def markdown_table(folder: Path) -> str:
    """:func:`summary` as the markdown table of ``docs/ablations.md``."""
    rows = summary(folder)
    metric = rows[0]["metric"] if rows else "metric"
    lines = [f"| operator | parameters | final test {metric} (mean ± std over seeds) | seeds |", "|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['parameters']:,} | {r['mean']:.1f} ± {r['std']:.1f} | {r['seeds']} |" for r in rows]
    return "\n".join(lines)


#: how each metric is named on an axis
UNITS = {"psnr": "PSNR (dB)", "accuracy": "accuracy (%)"}


def metric_limits(values: list[float], metric: str, reference: float | None = None) -> tuple[float, float]:
    """The y range of a metric's plot: the data (and ``reference``) with a margin, never from 0 by default.

    A PSNR or an accuracy near its neighbours' differs by tenths: an axis from 0 flattens
    every difference. Accuracy stays inside [0, 100].
    """
    points = [float(v) for v in values] + ([float(reference)] if reference is not None else [])
    if not points or not all(np.isfinite(points)):
        raise ValueError(f"values must be finite numbers, got {points!r}")
    low, high = min(points), max(points)
    margin = max(0.08 * (high - low), 0.05 if metric == "accuracy" else 0.1)
    low, high = low - margin, high + margin
    if metric == "accuracy":
        low, high = max(low, 0.0), min(high, 100.0)
    return low, high


def ablation(folder: Path, out_dir: Path) -> Path:
    """``ablation-<folder>.png``: the final metric per operator (every seed a dot), its curves, its cost.

    The final-metric panel is a dot plot on the metric's own range (no bars from 0); where the
    task has a metric of the unprocessed input (denoising: the noisy photos' PSNR), it is a
    dashed reference line on both metric panels: the floor any model must clear.
    """
    runs = read_runs(folder)
    names = list(runs)
    labels = {name: _label(name, runs[name]) for name in names}
    last = next(iter(next(iter(runs.values())).values()))[-1]
    metric, reference = last.metric, last.input_value
    unit = UNITS.get(metric, metric)
    fig, (finals_ax, curves, cost) = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    colours = plt.get_cmap("tab10")
    shown: list[float] = []
    for i, name in enumerate(names):
        finals = np.array([records[-1].value for records in runs[name].values()], dtype=np.float64)
        finals_ax.scatter([i] * len(finals), finals, color=colours(i % 10), s=18, zorder=3, alpha=0.8)
        finals_ax.errorbar(i + 0.18, finals.mean(), yerr=finals.std(ddof=1) if len(finals) > 1 else 0, fmt="_",
                           color="black", markersize=14, capsize=3, zorder=4)
        shown += finals.tolist()
        for seed, records in sorted(runs[name].items()):
            # per-epoch curves are the validation metric (runs since the test set is scored once), else the test's
            key = "val_value" if all(r.val_value is not None for r in records) else "value"
            values = [getattr(r, key) for r in records]
            curves.plot([r.epoch for r in records], values, color=colours(i % 10),
                        marker=".", label=labels[name] if seed == min(runs[name]) else None)
        every = [r for records in runs[name].values() for r in records]
        cost.scatter([every[-1].parameters], [np.mean([r.seconds for r in every])], color=colours(i % 10),
                     label=labels[name])
    for ax in (finals_ax, curves):
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle="--", linewidth=1,
                       label=f"noisy input (test): {reference:.2f}" if ax is curves else None)
    if reference is not None:
        finals_ax.text(len(names) - 0.5, reference, f"noisy input {reference:.2f}", ha="right", va="bottom",
                       fontsize=7, color="grey")
    finals_ax.set_ylim(*metric_limits(shown, metric, reference))
    finals_ax.set_xlim(-0.6, len(names) - 0.4)
    finals_ax.set_xticks(range(len(names)), [labels[n] for n in names], rotation=30, ha="right", fontsize=8)
    finals_ax.set_ylabel(f"final test {unit}\n(dots: seeds; black: mean ± std)", fontsize=8)
    curves.set_xlabel("epoch")
    curves.set_ylabel(f"{unit} per epoch (validation where recorded)", fontsize=8)
    curves.legend(fontsize=7)
    cost.set_xscale("log")
    cost.set_xlabel("parameters")
    cost.set_ylabel("seconds per epoch (mean)", fontsize=8)
    cost.legend(fontsize=7)
    fig.suptitle(f"{folder.name}: task {last.task}, {len(names)} operators, the saved run in "
                 f"docs/results/{folder.name}", fontsize=10)
    return save(fig, out_dir / f"ablation-{folder.name.removeprefix('compare-')}.png")


def _label(name: str, seeds: dict[int, list[RunRecord]]) -> str:
    """The operator's name, flagged when a seed's run stopped before its last epoch."""
    done = [records[-1].epoch for records in seeds.values()]
    planned = [records[-1].epochs for records in seeds.values()]
    if all(d == p for d, p in zip(done, planned)):
        return name
    return f"{name} (incomplete: {min(done)}/{max(planned)} epochs)"


def draw(out_dir: Path, results: Path) -> list[Path]:
    """Every plot the saved results allow; none when ``results`` holds none."""
    written = [ablation(folder, out_dir) for folder in sorted(results.glob("compare-*")) if folder.is_dir()]
    bench = results / BENCH_FILE
    if bench.is_file():
        from comparisons.bench import plot  # the bench report draws its own data

        path = out_dir / "bench-cpu.png"
        plot(json.loads(bench.read_text()), path)
        written.append(path)
    return written
