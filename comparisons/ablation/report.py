"""Tables and plots of a sweep, drawn from its saved records alone.

The table (:mod:`comparisons.ablation.summary`): per operator (rows in sweep order) the
parameters, forward FLOPs per image, the test metric as a mean with its 95% interval over
seeds, the paired difference to the baseline with its interval, p-value and verdict, whether
the training loss converged, and seconds per epoch; under it the warnings, the criteria and
the environment the runs ran in. ``report.md`` holds the same and three plots: the
validation metric vs epoch per operator, the final test metric vs parameters, and seconds per
epoch. ``results.csv`` holds the table as data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table as RichTable

from . import provenance
from .record import RunRecord
from .results import RESULTS_FILE, atomic_write, atomic_write_text, write_records
from .summary import METRIC_UNITS, Table, cells, headers, input_cells, markdown, notes, tables, to_csv

CSV_FILE = "results.csv"
MEMORY_NOTE = ("peak memory: CUDA's max allocated on GPU; on CPU, where torch keeps no allocator peak, the bytes "
               "autograd saves for backward in one training step plus parameters, gradients and optimiser state")


def title(table: Table) -> str:
    return (f"neighbor-zoo compare: {table.task} on {table.backbone}, test "
            f"{METRIC_UNITS.get(table.metric, table.metric)} at the last epoch")


def environment_lines(table: Table) -> list[str]:
    return provenance.describe(table.environment) if table.environment else ["environment: not recorded"]


def rich_tables(records: list[RunRecord], baseline: str | None = None,
                strict: bool = True) -> list[tuple[RichTable, list[str]]]:
    """Per table: the rich table and the lines to print under it (notes, then the environment)."""
    out = []
    for t in tables(records, baseline, strict):
        table = RichTable(title=title(t))
        for h in headers(t):
            table.add_column(h, justify="left" if h == "operator" else "right")
        for row in t.rows:
            table.add_row(*cells(row, t))
        extra = input_cells(t)
        if extra:
            table.add_row(*extra)
        out.append((table, notes(t) + environment_lines(t)))
    return out


def _save_figure(fig: Any, path: Path) -> None:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))


def plots(table: Table, out: Path, prefix: str) -> list[str]:
    """The three plots as PNG files under ``out``; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = METRIC_UNITS.get(table.metric, table.metric)
    rows = table.rows
    names = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        if row.curve:
            e, m = zip(*row.curve)
            ax.plot(e, m, marker="o", ms=3, label=row.operator)
    if table.input_value is not None:
        ax.axhline(table.input_value, color="grey", ls="--", lw=1, label="noisy input (test)")
    ax.set(xlabel="epoch", ylabel=f"validation {unit}", title=f"validation {unit} vs epoch (mean over seeds)")
    ax.legend(fontsize=7)
    names.append(f"{prefix}metric_vs_epoch.png")
    _save_figure(fig, out / names[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in rows:
        ci = row.estimate.ci
        yerr = [[row.estimate.mean - ci[0]], [ci[1] - row.estimate.mean]] if ci else None
        ax.errorbar([row.parameters], [row.estimate.mean], yerr=yerr, fmt="o", capsize=3, label=row.operator)
    ax.set_xscale("log")
    ax.set(xlabel="parameters", ylabel=f"final test {unit}", title=f"final test {unit} (95% CI) vs parameters")
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


def report_markdown(table_list: list[Table], command: str | None,
                    plot_names: dict[int, list[str]] | None = None) -> str:
    lines = ["# neighbor-zoo compare", ""]
    if command:
        lines += ["Produced by:", "", f"```bash\n{command}\n```", ""]
    for i, t in enumerate(table_list):
        lines += [f"## {t.task} on {t.backbone}", "", markdown(t), ""]
        lines += [f"- {line}" for line in notes(t)] + [""]
        lines += ["Environment:", ""] + [f"- {line}" for line in environment_lines(t)] + [""]
        lines += ["| operator | what it builds |", "|---|---|"]
        lines += [f"| {row.operator} | `{row.spec}` |" for row in t.rows]
        lines += [""] + [f"![{name}]({name})" for name in (plot_names or {}).get(i, [])] + [""]
    lines += [f"*{MEMORY_NOTE}.*", ""]
    return "\n".join(lines)


def write_report(records: list[RunRecord], out: Path, command: str | None = None,
                 baseline: str | None = None, strict: bool = True) -> Path:
    """``results.jsonl``, ``results.csv``, ``report.md`` and the plots under ``out``, from ``records`` alone
    (``strict``: see :func:`~comparisons.ablation.summary.tables`)."""
    out = Path(out)
    write_records(out / RESULTS_FILE, records)
    table_list = tables(records, baseline, strict)
    atomic_write_text(out / CSV_FILE, to_csv(table_list))
    names = {i: plots(t, out, "" if len(table_list) == 1 else f"{t.task}-{t.backbone}-")
             for i, t in enumerate(table_list)}
    path = out / "report.md"
    atomic_write_text(path, report_markdown(table_list, command, names))
    return path


def saved_run_block(folder: Path, baseline: str | None = None) -> str:
    """The markdown the README and ``docs/ablations.md`` show for a saved run: the table, its notes,
    and the command and machine that produced it (``tests/test_docs.py`` keeps the pages equal to it)."""
    import json

    from .results import collect

    folder = Path(folder)
    sweep_file = folder / "sweep.json"
    saved = json.loads(sweep_file.read_text()) if sweep_file.exists() else {}
    (table,) = tables(collect([folder]), baseline or saved.get("baseline"))
    lines = [markdown(table), ""] + [f"- {line}" for line in notes(table)[:-3]]
    lines += ["", f"Produced by `{saved.get('command', '?')}` on {provenance.machine_line(table.environment or {})}."]
    return "\n".join(lines)
