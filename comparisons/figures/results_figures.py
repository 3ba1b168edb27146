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


def ablation(folder: Path, out_dir: Path) -> Path:
    """``ablation-<folder>.png``: the final metric per operator (every seed a dot) and its curves."""
    runs = read_runs(folder)
    names = list(runs)
    labels = {name: _label(name, runs[name]) for name in names}
    metric = next(iter(next(iter(runs.values())).values()))[-1].metric
    fig, (bars, curves, cost) = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        finals = [records[-1].value for records in runs[name].values()]
        bars.bar(i, float(np.mean(finals)), color=colours(i % 10), alpha=0.6)
        bars.scatter([i] * len(finals), finals, color="black", s=10, zorder=3)
        for seed, records in sorted(runs[name].items()):
            curves.plot([r.epoch for r in records], [r.value for r in records], color=colours(i % 10),
                        marker=".", label=labels[name] if seed == min(runs[name]) else None)
        every = [r for records in runs[name].values() for r in records]
        cost.scatter([every[-1].parameters], [np.mean([r.seconds for r in every])], color=colours(i % 10),
                     label=labels[name])
    bars.set_xticks(range(len(names)), [labels[n] for n in names], rotation=30, ha="right", fontsize=8)
    bars.set_ylabel(f"final {metric} (bar: seed mean, dots: seeds)", fontsize=8)
    curves.set_xlabel("epoch")
    curves.set_ylabel(metric)
    curves.legend(fontsize=7)
    cost.set_xscale("log")
    cost.set_xlabel("parameters")
    cost.set_ylabel("seconds per epoch (mean)", fontsize=8)
    cost.legend(fontsize=7)
    task = next(iter(next(iter(runs.values())).values()))[-1].task
    fig.suptitle(f"{folder.name}: task {task}, {len(names)} operators, the saved run in docs/results/{folder.name}",
                 fontsize=10)
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
