"""Results as data first (an atomically written JSON), then a rich table and a log-log plot from it."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def growth_exponents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Least-squares slope of log(time) against log(N) per (operator, variant, mode) with >= 2 sizes.

    ``time ~ N^p``: p near 1 is linear in the number of tokens, near 2 quadratic.
    """
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in rows:
        if r.get("time_s") is not None:
            series.setdefault((r["operator"], r["variant"], r["mode"]), []).append((r["tokens"], r["time_s"]))
    out = []
    for (op, variant, mode), points in sorted(series.items()):
        if len({n for n, _ in points}) < 2:
            continue
        logn, logt = np.log([n for n, _ in points]), np.log([t for _, t in points])
        slope, _ = np.polyfit(logn, logt, 1)
        out.append({"operator": op, "variant": variant, "mode": mode, "exponent": float(slope),
                    "tokens": [n for n, _ in points]})
    return out


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.0f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def table(data: dict[str, Any]) -> Table:
    """One row per (operator, size, mode, variant)."""
    meta = data["meta"]
    t = Table(title=f"neighbor-zoo bench on {meta['device_name']} ({meta['dtype']}, B={meta['batch']}, "
                    f"C={meta['channels']}, k={meta['k']}; fastest matmul reading {meta['matmul_tflops']:.3g} TFLOP/s)")
    for col in ("operator", "size", "mode", "variant", "time", "x baseline", "peak mem", "TFLOP/s", "% limit",
                "recall@k"):
        t.add_column(col, justify="left" if col in ("operator", "mode", "variant") else "right")
    for r in data["results"]:
        if r["time_s"] is None:
            time, ratio, tflops, frac = "[dim]skipped[/dim]", "-", "-", "-"
            mem = f"~{_bytes(r['estimated_bytes'])} (est.)" if r.get("estimated_bytes") else "-"
        else:
            time = f"{r['time_s'] * 1e3:.2f} ms" if r["time_s"] < 1 else f"{r['time_s']:.3f} s"
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            mem = _bytes(r["peak_bytes"])
            tflops, frac = f"{r['tflops']:.3g}", f"{100 * r['fraction_of_limit']:.1f}"
        recall = "-" if r.get("recall") is None else f"{r['recall']:.3f}"
        t.add_row(r["operator"], f"{r['size']}x{r['size']}", r["mode"], r["variant"], time, ratio, mem, tflops, frac,
                  recall)
    return t


def growth_table(data: dict[str, Any]) -> Table:
    t = Table(title="growth of time with N = H W (log-log least squares: time ~ N^p)")
    for col in ("operator", "variant", "mode", "p", "N"):
        t.add_column(col)
    for g in data["growth"]:
        t.add_row(g["operator"], g["variant"], g["mode"], f"{g['exponent']:.2f}", ", ".join(map(str, g["tokens"])))
    return t


def plot(data: dict[str, Any], path: Path) -> None:
    """Time against tokens, log-log, one panel per mode, one line per (operator, variant)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = sorted({r["mode"] for r in data["results"]})
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.8), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        series: dict[str, list[tuple[int, float]]] = {}
        for r in data["results"]:
            if r["mode"] == mode and r["time_s"] is not None:
                series.setdefault(f"{r['operator']} {r['variant']}", []).append((r["tokens"], r["time_s"]))
        for label, points in sorted(series.items()):
            points.sort()
            ax.plot([n for n, _ in points], [t for _, t in points], marker="o", label=label,
                    linestyle="--" if label.endswith(("naive", "native", "peer")) else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tokens N = H W")
        ax.set_ylabel("seconds per call (median)")
        ax.set_title(f"{mode}, {data['meta']['device_name']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def fraction(value: float, limit: float) -> float:
    return value / limit if limit > 0 and math.isfinite(value) else float("nan")


def markdown(data: dict[str, Any], operators: list[str] | None = None, modes: list[str] | None = None) -> str:
    """The results as a Markdown table (for docs), optionally only some operators / modes."""
    lines = ["| operator | size | mode | variant | time | x baseline | peak memory | TFLOP/s | % of matmul limit "
             "| recall@k |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in data["results"]:
        if (operators and r["operator"] not in operators) or (modes and r["mode"] not in modes):
            continue
        if r["time_s"] is None:
            est = f"~{_bytes(r['estimated_bytes'])} (est.)" if r.get("estimated_bytes") else "-"
            cells = ["skipped", "-", est, "-", "-"]
        else:
            time = f"{r['time_s'] * 1e3:.1f} ms" if r["time_s"] < 1 else f"{r['time_s']:.2f} s"
            cells = [time, "-" if r["ratio"] is None else f"{r['ratio']:.2f}", _bytes(r["peak_bytes"]),
                     f"{r['tflops']:.3g}", f"{100 * r['fraction_of_limit']:.1f}"]
        recall = "-" if r.get("recall") is None else f"{r['recall']:.3f}"
        lines.append(f"| {r['operator']} | {r['size']}x{r['size']} | {r['mode']} | {r['variant']} | "
                     + " | ".join(cells) + f" | {recall} |")
    return "\n".join(lines)


def profile_table(data: dict[str, Any]) -> Table:
    """Per (operator, size, variant): the forward time and its shares by stage (``bench --profile``)."""
    from neighborhoods.functional.stages import STAGES
    t = Table(title="forward time by stage (torch.profiler ranges; other = unlabelled work)")
    for name in ("operator", "size", "variant", "forward", *STAGES, "other"):
        t.add_column(name, justify="left" if name in ("operator", "variant") else "right")
    for r in data.get("profile", []):
        t.add_row(r["operator"], f"{r['size']}x{r['size']}", r["variant"], f"{r['time_s'] * 1e3:.2f} ms",
                  *(f"{100 * r['shares'][s]:.0f}%" for s in (*STAGES, "other")))
    return t
