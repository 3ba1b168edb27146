"""Tables and plots of a sweep, drawn from its saved records alone.

Per operator (rows in sweep order): parameters, the final epoch's test metric as mean +- std
over seeds, the training loss at the first and last epoch (does it fall?), seconds per
epoch and peak memory. ``report.md`` holds the same table and three plots: metric vs epoch
per operator, final metric vs parameters, and seconds per epoch.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from .record import RunRecord
from .results import RESULTS_FILE, atomic_write, atomic_write_text, write_records

METRIC_UNITS = {"accuracy": "accuracy (%)", "psnr": "PSNR (dB)"}
MEMORY_NOTE = ("peak memory: CUDA's max allocated on GPU; on CPU, where torch keeps no allocator peak, the bytes "
               "autograd saves for backward in one training step plus parameters, gradients and optimiser state")


@dataclass(frozen=True)
class Row:
    """One operator's line of the table."""

    operator: str
    spec: str
    parameters: int
    seeds: int
    epochs: int
    mean: float
    std: float
    first_loss: float
    last_loss: float
    seconds: float
    memory_mb: float
    curve: list[tuple[int, float, float]]  # (epoch, mean, std) of the metric


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def group(records: list[RunRecord]) -> dict[tuple[str, str, str], list[Row]]:
    """``(task, backbone, metric)`` -> rows, in sweep order; only complete epochs shared by every seed."""
    by_op: dict[tuple, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    order: dict[tuple, dict[str, int]] = defaultdict(dict)
    for r in records:
        key = (r.task, r.backbone, r.metric)
        by_op[key][r.operator].append(r)
        order[key].setdefault(r.operator, r.index)
    out = {}
    for key, ops in by_op.items():
        rows = []
        for op in sorted(ops, key=lambda o: (order[key][o], o)):
            recs = ops[op]
            seeds = sorted({r.seed for r in recs})
            per_seed = {s: {r.epoch: r for r in recs if r.seed == s} for s in seeds}
            epochs = sorted(set.intersection(*(set(e) for e in per_seed.values())))
            if not epochs:
                continue
            last = epochs[-1]
            curve = [(e, *_mean_std([per_seed[s][e].value for s in seeds])) for e in epochs]
            mean, std = _mean_std([per_seed[s][last].value for s in seeds])
            rows.append(Row(
                operator=op, spec=recs[0].spec or op, parameters=recs[0].parameters, seeds=len(seeds),
                epochs=last, mean=mean, std=std,
                first_loss=statistics.fmean(per_seed[s][epochs[0]].train_loss for s in seeds),
                last_loss=statistics.fmean(per_seed[s][last].train_loss for s in seeds),
                seconds=statistics.fmean(per_seed[s][e].seconds for s in seeds for e in epochs),
                memory_mb=max(per_seed[s][e].peak_memory_mb for s in seeds for e in epochs), curve=curve))
        out[key] = rows
    return out


HEADERS = ("operator", "parameters", "{metric} (mean ± std)", "seeds", "epochs", "train loss (first → last)",
           "s/epoch", "peak memory (MB)")


def _cells(row: Row, metric: str) -> list[str]:
    digits = 1 if metric == "accuracy" else 2
    return [row.operator, f"{row.parameters:,}", f"{row.mean:.{digits}f} ± {row.std:.{digits}f}", str(row.seeds),
            str(row.epochs), f"{row.first_loss:.3f} → {row.last_loss:.3f}", f"{row.seconds:.2f}",
            f"{row.memory_mb:.1f}"]


def rich_tables(records: list[RunRecord]) -> list[Table]:
    tables = []
    for (task, backbone, metric), rows in group(records).items():
        table = Table(title=f"neighbor-zoo compare: {task} on {backbone}, test {METRIC_UNITS.get(metric, metric)} "
                            f"at the last epoch")
        for h in HEADERS:
            table.add_column(h.format(metric=metric), justify="left" if h == "operator" else "right")
        for row in rows:
            table.add_row(*_cells(row, metric))
        tables.append(table)
    return tables


def markdown_table(rows: list[Row], metric: str) -> str:
    lines = ["| " + " | ".join(h.format(metric=metric) for h in HEADERS) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|"]
    lines += ["| " + " | ".join(_cells(row, metric)) + " |" for row in rows]
    return "\n".join(lines)


def _save_figure(fig: Any, path: Path) -> None:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))


def plots(rows: list[Row], metric: str, out: Path, prefix: str) -> list[str]:
    """The three plots as PNG files under ``out``; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = METRIC_UNITS.get(metric, metric)
    names = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        e, m, s = zip(*row.curve)
        ax.plot(e, m, marker="o", ms=3, label=row.operator)
        ax.fill_between(e, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)], alpha=0.15)
    ax.set(xlabel="epoch", ylabel=f"test {unit}", title=f"test {unit} vs epoch (mean ± std over seeds)")
    ax.legend(fontsize=7)
    names.append(f"{prefix}metric_vs_epoch.png")
    _save_figure(fig, out / names[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        ax.errorbar([row.parameters], [row.mean], yerr=[row.std], fmt="o", capsize=3, label=row.operator)
    ax.set_xscale("log")
    ax.set(xlabel="parameters", ylabel=f"final test {unit}", title=f"final test {unit} vs parameters")
    ax.legend(fontsize=7)
    names.append(f"{prefix}metric_vs_parameters.png")
    _save_figure(fig, out / names[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.35 * max(len(rows), 2)))
    ax.barh([row.operator for row in rows][::-1], [row.seconds for row in rows][::-1])
    ax.set(xlabel="seconds per epoch (training)", title="time per epoch")
    names.append(f"{prefix}seconds_per_epoch.png")
    _save_figure(fig, out / names[-1])
    plt.close(fig)
    return names


def write_report(records: list[RunRecord], out: Path, command: str | None = None) -> Path:
    """``results.jsonl``, ``report.md`` and the plots under ``out``, from ``records`` alone."""
    out = Path(out)
    write_records(out / RESULTS_FILE, records)
    groups = group(records)
    lines = ["# neighbor-zoo compare", ""]
    if command:
        lines += ["Produced by:", "", f"```bash\n{command}\n```", ""]
    for (task, backbone, metric), rows in groups.items():
        prefix = "" if len(groups) == 1 else f"{task}-{backbone}-"
        lines += [f"## {task} on {backbone}", "",
                  f"Test {METRIC_UNITS.get(metric, metric)} at the last epoch, mean ± std over seeds; "
                  f"training loss averaged over seeds; seconds per epoch of training on "
                  f"{records[0].device or '?'} (world size {records[0].world_size}).", "",
                  markdown_table(rows, metric), "", "| operator | what it builds |", "|---|---|"]
        lines += [f"| {row.operator} | `{row.spec}` |" for row in rows]
        lines += [""] + [f"![{name}]({name})" for name in plots(rows, metric, out, prefix)] + [""]
    lines += [f"*{MEMORY_NOTE}.*", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
