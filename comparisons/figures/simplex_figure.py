"""The N3 relaxation as paths on the simplex (Ploetz & Roth 2018, Fig. 1d and Eqs. 8-10).

Three candidates at distances 0.5, 1, 2 from the query (scores ``-d``, Eq. 4). For each
temperature, :func:`~neighborhoods.functional.continuous_knn` gives the k = 3 weight vectors
``w_1, w_2, w_3``; each is a point of the triangle whose corners are the candidates. Hot
(high t): every ``w_j`` sits near the centre, a uniform average. Cold (low t): ``w_j`` is the
corner of the j-th nearest candidate, hard k-NN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib import cm, colors
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from neighborhoods.functional import continuous_knn

from .plotting import plt, save

#: distances of the three candidates to the query; scores are their negatives (Eq. 4)
DISTANCES = (0.5, 1.0, 2.0)
TEMPERATURES = tuple(float(t) for t in np.logspace(1, -2, 13))
_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
_MARKERS = ("o", "s", "^")


def relaxation_weights(temperatures: tuple[float, ...] = TEMPERATURES) -> np.ndarray:
    """``(T, M=3, k=3)``: the continuous k-NN weights at each temperature (float64)."""
    scores = -torch.tensor(DISTANCES, dtype=torch.float64)
    return np.stack([continuous_knn(scores, k=3, temperature=t).numpy() for t in temperatures])


def draw(out_dir: Path) -> list[Path]:
    """``n3-simplex.png``: the paths on the simplex and the weights against the temperature."""
    weights = relaxation_weights()
    fig, axes = _layout()
    norm = colors.LogNorm(min(TEMPERATURES), max(TEMPERATURES))
    cmap = plt.get_cmap("RdYlBu_r")  # red hot (uniform), blue cold (hard), as in the paper

    ax = axes[0]
    ax.fill(*_CORNERS.T, facecolor="white", edgecolor="black", linewidth=0.8)
    for i, (x, y) in enumerate(_CORNERS):
        ax.annotate(f"x{i + 1} (d={DISTANCES[i]:g})", (x, y), fontsize=7, ha="center",
                    xytext=(0, -11 if y == 0 else 5), textcoords="offset points")
    for t, w in zip(TEMPERATURES, weights):
        points = w.T @ _CORNERS  # (k, 2): w_j in barycentric coordinates
        ax.plot(*points.T, color=cmap(norm(t)), linewidth=1.2)
        for j, p in enumerate(points):
            ax.plot(*p, marker=_MARKERS[j], color=cmap(norm(t)), markersize=5, markeredgecolor="black",
                    markeredgewidth=0.3)
    ax.set_title("paths w1 -> w2 -> w3 on the simplex\n(o w1, s w2, ^ w3; red hot, blue cold)", fontsize=8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_xlim(-0.15, 1.15)
    ax.set_ylim(-0.15, 1.0)
    bar = fig.colorbar(cm.ScalarMappable(norm, cmap), ax=ax, location="bottom", shrink=0.7, aspect=30, pad=0.02)
    bar.set_label("temperature t", fontsize=7)
    bar.ax.tick_params(labelsize=7)

    for j in range(3):
        ax = axes[j + 1]
        for i in range(3):
            ax.semilogx(TEMPERATURES, weights[:, i, j], marker=".", label=f"x{i + 1} (d={DISTANCES[i]:g})")
        ax.axhline(1 / 3, color="grey", linewidth=0.6, linestyle=":")
        ax.invert_xaxis()  # temperature falls to the right, as the weights harden
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("temperature t (falling ->)", fontsize=7)
        ax.set_title(f"w{j + 1}: weights of neighbour {j + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=6, loc="center left")
    return [save(fig, out_dir / "n3-simplex.png")]


def _layout() -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, 4, figsize=(12.5, 3.6), width_ratios=(1.5, 1, 1, 1), layout="constrained")
    return fig, list(axes)
