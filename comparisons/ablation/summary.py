"""An ablation's table from its saved records: per operator the estimate, the paired comparison, warnings.

A record is one (operator, seed, epoch) of a run (:mod:`comparisons.ablation.train`). Per
operator, over its seeds, the table holds the reported test metric (the last epoch's) as a
mean with its 95% interval, the paired difference to the baseline operator over the seeds
both ran, its interval, p-value and verdict (:mod:`comparisons.ablation.statistics`),
whether every seed's training loss converged, parameters, forward FLOPs per image, seconds
per epoch, and the warnings a reader needs before trusting the row:

- fewer than 3 seeds (the interval is wide or missing, and the test has little power);
- the training loss has not converged (:data:`~comparisons.ablation.statistics.CONVERGENCE_CRITERION`);
- a claimed ``better``/``worse`` smaller than the metric's own wandering within a run over
  its last epochs (the validation metric's spread; the test set is scored only once).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import statistics as stats

METRIC_UNITS = {"accuracy": "accuracy (%)", "psnr": "PSNR (dB)"}


@dataclass(frozen=True)
class Row:
    """One operator's line of the table (module docstring)."""

    operator: str
    spec: str
    parameters: int
    flops: int | None
    seeds: tuple[int, ...]
    epochs: int
    estimate: stats.Estimate
    values: dict[int, float]
    converged: bool
    spread: float | None
    first_loss: float
    last_loss: float
    seconds: float
    memory_mb: float
    curve: list[tuple[int, float]]  # (epoch, mean over seeds of the validation metric, else the test metric)
    note: str | None = None  # e.g. how --match params set its width
    paired: stats.Paired | None = None
    verdict: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Table:
    """The rows of one (task, backbone, metric) and what they are measured against."""

    task: str
    backbone: str
    metric: str
    baseline: str
    rows: list[Row]
    input_value: float | None  # the metric of the unprocessed input (denoising: the noisy photos), if any
    environment: dict[str, Any] | None


def _epoch_curve(record: dict[str, Any]) -> float | None:
    value = record.get("val_value")
    return record.get("value") if value is None else value


def _row(op: str, recs: list[dict[str, Any]]) -> Row | None:
    seeds = sorted({r["seed"] for r in recs})
    per_seed = {s: {r["epoch"]: r for r in recs if r["seed"] == s} for s in seeds}
    # a seed counts once its run has finished: its last epoch holds the test figure
    done = [s for s in seeds if any(r["epoch"] == r["epochs"] for r in per_seed[s].values())]
    if not done:
        return None
    epochs = sorted(set.intersection(*(set(per_seed[s]) for s in done)))
    last = epochs[-1]
    values = {s: float(per_seed[s][last]["value"]) for s in done}
    losses = {s: [per_seed[s][e]["train_loss"] for e in epochs] for s in done}
    curves = {s: [_epoch_curve(per_seed[s][e]) for e in epochs] for s in done}
    has_curve = all(v is not None for c in curves.values() for v in c)
    first = per_seed[done[0]][last]
    return Row(
        operator=op, spec=first.get("spec", op), parameters=int(first["parameters"]), flops=first.get("flops"),
        seeds=tuple(done), epochs=last, estimate=stats.mean_ci(list(values.values())), values=values,
        # judged on the mean curve: one seed's epoch-to-epoch noise is not a trend
        converged=stats.converged([statistics.fmean(losses[s][i] for s in done) for i in range(len(epochs))]),
        spread=stats.last_epochs_spread(list(curves.values())) if has_curve else None,
        first_loss=statistics.fmean(losses[s][0] for s in done),
        last_loss=statistics.fmean(losses[s][-1] for s in done),
        seconds=statistics.fmean(per_seed[s][e]["seconds"] for s in done for e in epochs),
        memory_mb=max(per_seed[s][e].get("peak_memory_mb", 0.0) for s in done for e in epochs),
        curve=[(e, statistics.fmean(curves[s][i] for s in done)) for i, e in enumerate(epochs)] if has_curve else [],
        note=first.get("note"))


def _compare(row: Row, base: Row, metric: str) -> Row:
    """``row`` with its paired comparison to ``base`` and its warnings filled in."""
    warnings = []
    if len(row.seeds) < stats.MIN_SEEDS:
        warnings.append(f"{len(row.seeds)} seed{'s' if len(row.seeds) != 1 else ''} (< {stats.MIN_SEEDS}): "
                        f"{'no interval' if len(row.seeds) == 1 else 'a wide interval'} and little power")
    if not row.converged:
        warnings.append("training loss not converged")
    if row is base:
        return Row(**{**row.__dict__, "warnings": warnings})
    shared = set(row.values) & set(base.values)
    paired = stats.paired_difference(row.values, base.values) if shared else None
    verdict = stats.verdict(paired, metric) if paired else None
    if paired is None:
        warnings.append(f"no seed shared with the baseline {base.operator!r}: no paired comparison")
    elif verdict != "not distinguishable" and row.spread is not None and row.spread > abs(paired.diff.mean):
        warnings.append(f"'{verdict}' by {abs(paired.diff.mean):.2f}, less than the metric's spread of "
                        f"{row.spread:.2f} within a run over its last epochs")
    return Row(**{**row.__dict__, "paired": paired, "verdict": verdict, "warnings": warnings})


def tables(records: list[Any], baseline: str | None = None, strict: bool = True) -> list[Table]:
    """One :class:`Table` per (task, backbone, metric) in ``records``; rows in sweep order.

    ``baseline`` is an operator label (default: each table's first operator); a label that a
    table lacks is an error listing its operators, or with ``strict=False`` (one shard of a
    sweep, which may hold other operators) that table's first operator is its baseline.
    """
    # records as their flat JSON (RunRecord.to_json, or already dicts): optional keys may be absent
    records = [r.to_json() if hasattr(r, "to_json") else r for r in records]
    by_key: dict[tuple[str, str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    order: dict[tuple, dict[str, int]] = defaultdict(dict)
    for r in records:
        key = (r["task"], r["backbone"], r["metric"])
        by_key[key][r["operator"]].append(r)
        order[key].setdefault(r["operator"], r.get("index", 0))
    out = []
    for key, ops in by_key.items():
        rows = [row for op in sorted(ops, key=lambda o: (order[key][o], o)) if (row := _row(op, ops[op]))]
        if not rows:
            continue
        names = [row.operator for row in rows]
        if baseline is not None and baseline not in names and strict:
            raise ValueError(f"baseline must be one of the operators {names}, got {baseline!r}")
        base = rows[names.index(baseline)] if baseline in names else rows[0]
        rows = [_compare(row, base, key[2]) for row in rows]
        inputs = [r["input_value"] for r in records if (r["task"], r["backbone"], r["metric"]) == key
                  and r.get("input_value") is not None]
        envs = [r["environment"] for recs in ops.values() for r in recs if r.get("environment")]
        out.append(Table(*key, base.operator, rows, inputs[0] if inputs else None, envs[0] if envs else None))
    return out


def to_json(table: Table) -> dict[str, Any]:
    """The ``report --json`` object of one table (the README documents its keys)."""
    rows = []
    for row in table.rows:
        vs = None
        if row.paired is not None:
            vs = {"diff": row.paired.diff.mean, "ci95": list(row.paired.diff.ci) if row.paired.diff.ci else None,
                  "p": row.paired.p, "verdict": row.verdict}
        rows.append({"operator": row.operator, "mean": row.estimate.mean,
                     "ci95": list(row.estimate.ci) if row.estimate.ci else None, "seeds": len(row.seeds),
                     "params": row.parameters, "flops": row.flops, "s_per_epoch": row.seconds,
                     "converged": row.converged, "vs_baseline": vs})
    return {"baseline": table.baseline, "metric": table.metric, "environment": table.environment or {},
            "rows": rows}


def headers(table: Table) -> list[str]:
    return ["operator", "parameters", "FLOPs/image", f"{table.metric} mean [95% CI]", "seeds",
            f"vs {table.baseline} [95% CI]", "p", "verdict", "converged", "s/epoch"]


def _digits(metric: str) -> int:
    return 1 if metric == "accuracy" else 2


def _flops(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def cells(row: Row, table: Table) -> list[str]:
    d = _digits(table.metric)
    if row.operator == table.baseline:
        vs, p, verdict = "baseline", "", ""
    elif row.paired is None:
        vs, p, verdict = "n/a", "n/a", "n/a"
    else:
        diff = row.paired.diff
        vs = (f"{diff.mean:+.{d}f} [{diff.ci[0]:+.{d}f}, {diff.ci[1]:+.{d}f}]" if diff.ci
              else f"{diff.mean:+.{d}f} (no CI: 1 seed)")
        p, verdict = stats.fmt_p(row.paired.p), row.verdict or ""
    return [row.operator, f"{row.parameters:,}", _flops(row.flops), stats.fmt_estimate(row.estimate, d),
            str(len(row.seeds)), vs, p, verdict, "yes" if row.converged else "no", f"{row.seconds:.2f}"]


def input_cells(table: Table) -> list[str] | None:
    """The row of the unprocessed input (denoising: the noisy photos), when the task has one."""
    if table.input_value is None:
        return None
    return ["noisy input", "0", "0", f"{table.input_value:.{_digits(table.metric)}f} (fixed)", "", "", "", "", "",
            ""]


def notes(table: Table) -> list[str]:
    """The lines printed under a table: warnings per operator, the criteria, what the columns mean."""
    lines = [f"{row.operator}: {w}" for row in table.rows for w in row.warnings]
    lines += [f"{row.operator}: {row.note}" for row in table.rows if row.note]
    lines += [f"Test {METRIC_UNITS.get(table.metric, table.metric)} at the last epoch; 95% intervals by Student's "
              f"t over seeds; 'vs {table.baseline}': the mean paired difference over shared seeds (same data "
              f"order and initial RNG), its interval and the paired t-test's p; verdict at 95%.",
              stats.CONVERGENCE_CRITERION + ".",
              "FLOPs/image: torch.utils.flop_counter on one image (matmuls and convolutions only)."]
    return lines


def markdown(table: Table) -> str:
    head = headers(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(cells(row, table)) + " |" for row in table.rows]
    extra = input_cells(table)
    if extra:
        lines.append("| " + " | ".join(extra) + " |")
    return "\n".join(lines)


CSV_COLUMNS = ("task", "backbone", "metric", "operator", "parameters", "flops", "seeds", "mean", "ci95_low",
               "ci95_high", "baseline", "diff", "diff_ci95_low", "diff_ci95_high", "p", "verdict", "converged",
               "s_per_epoch", "warnings")


def to_csv(table_list: list[Table]) -> str:
    """Every table's rows as CSV (one header; empty cells where a value does not exist)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in table_list:
        for row in t.rows:
            ci = row.estimate.ci or (None, None)
            diff = row.paired.diff if row.paired else None
            dci = diff.ci if diff and diff.ci else (None, None)
            writer.writerow([t.task, t.backbone, t.metric, row.operator, row.parameters, row.flops, len(row.seeds),
                             row.estimate.mean, ci[0], ci[1], t.baseline, diff.mean if diff else None, dci[0],
                             dci[1], row.paired.p if row.paired else None, row.verdict, row.converged, row.seconds,
                             "; ".join(row.warnings)])
    return out.getvalue()
