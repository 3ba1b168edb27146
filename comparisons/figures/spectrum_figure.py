"""The spectrum: every registered operator placed by how its neighbourhood is chosen.

Placement comes from the registry alone (``operators.info(name)``): the selection kind
(fixed window, hard content-based choice, soft content-based choice, dense weights over
every key) on one axis, local or global on the other. A composite (``BranchingConv2d``:
``"hard content + fixed"``) sits between its parts.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

import operators

from .plotting import plt, save

#: the selection kinds from fixed to fully content-based, left to right
SELECTIONS = ("fixed", "hard content", "soft content", "dense")
LOCALITIES = ("local", "global")
_LABELS = {"fixed": "fixed\n(position only)", "hard content": "hard, by content\n(k chosen)",
           "soft content": "soft, by content\n(weights on a candidate set)", "dense": "dense\n(every key weighted)"}


def _position(kind: str, axis: tuple[str, ...], what: str, name: str) -> float:
    parts = [p.strip() for p in kind.split("+")]
    unknown = [p for p in parts if p not in axis]
    if unknown:
        raise ValueError(f"operators.info({name!r}).{what} = {kind!r} has parts outside {axis}: {unknown}")
    return float(np.mean([axis.index(p) for p in parts]))


def placements() -> dict[tuple[float, float], list[str]]:
    """``(x, y) -> [name (cost), ...]`` for every registered operator."""
    cells: dict[tuple[float, float], list[str]] = defaultdict(list)
    for name in operators.available():
        info = operators.info(name)
        xy = (_position(info.selection, SELECTIONS, "selection", name),
              _position(info.locality, LOCALITIES, "locality", name))
        cells[xy].append(f"{name}  {info.cost}")
    return cells


def draw(out_dir: Path) -> list[Path]:
    """``spectrum.png``."""
    cells = placements()
    fig, ax = plt.subplots(figsize=(13, 7.2), layout="constrained")
    for (x, y), names in sorted(cells.items()):
        ax.text(x, y, "\n".join(names), ha="center", va="center", fontsize=7.5, family="monospace",
                bbox=dict(boxstyle="round,pad=0.4", facecolor="#eef3fb" if y >= 0.5 else "#fbf3e8",
                          edgecolor="#889", linewidth=0.6))
    ax.set_xticks(range(len(SELECTIONS)), [_LABELS[s] for s in SELECTIONS], fontsize=9)
    ax.set_yticks(range(len(LOCALITIES)), ["local\n(a window)", "global\n(the whole input)"], fontsize=9)
    ax.set_xlim(-0.6, len(SELECTIONS) - 0.4)
    ax.set_ylim(-0.75, 1.85)
    ax.annotate("", xy=(len(SELECTIONS) - 0.45, -0.68), xytext=(-0.55, -0.68),
                arrowprops=dict(arrowstyle="->", color="grey"))
    ax.text(1.5, -0.62, "from a fixed window to weights chosen by content over every key", ha="center",
            fontsize=8, color="grey")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title("The spectrum: every registered operator by how it selects (name, cost class; from operators.info)",
                 fontsize=10)
    return [save(fig, out_dir / "spectrum.png")]
