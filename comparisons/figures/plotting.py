"""Shared matplotlib helpers: a headless backend, byte-stable PNGs, maps drawn over the photo."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import cm, colors, ticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: colour map of the weight a pixel gets (a zero weight leaves the dimmed photo uncovered)
WEIGHT_CMAP = "plasma"
#: for maps with negative weights (blue negative, red positive)
SIGNED_CMAP = "RdBu_r"
QUERY_COLOUR = "#00e5ff"


def save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (temp file then ``os.replace``) and close it.

    No timestamp or software metadata is embedded, so the same figure gives the same bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
    return path


def show_map(ax: Axes, rgb: np.ndarray, weights: np.ndarray | None, query: tuple[int, int] | None,
             title: str, vmax: float | None = None, bar: bool = True, label: str = "weight") -> None:
    """The photo, dimmed, with ``weights`` ``(H, W)`` painted over it and the query pixel boxed.

    ``vmax`` fixes the top of the colour scale (default: the map's own maximum), so that
    panels meant to be compared can share one scale. ``bar`` adds a colour bar under the
    panel saying what the colours mean (``label``); a map with negative values gets a
    diverging scale symmetric about 0.
    """
    ax.imshow(rgb * 0.45 if weights is not None else rgb, interpolation="nearest")
    if weights is not None:
        signed = bool((weights < 0).any())  # e.g. a dot-product affinity: a diverging scale
        top = float(np.abs(weights).max()) if vmax is None else vmax
        share = np.clip(np.abs(weights) / top, 0, 1) if top > 0 else np.zeros_like(weights)
        # opacity grows with the weight (square root, so that small soft weights still show);
        # pixels the query does not read stay the dimmed photo
        alpha = 0.95 * np.sqrt(share)
        top = top if top > 0 else 1.0
        cmap = SIGNED_CMAP if signed else WEIGHT_CMAP
        norm = colors.Normalize(-top if signed else 0.0, top)
        ax.imshow(weights, cmap=cmap, norm=norm, alpha=alpha, interpolation="nearest")
        if bar:
            colour_bar(ax, norm, cmap, label)
    if query is not None:
        r, c = query
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=QUERY_COLOUR, linewidth=1.6))
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def colour_bar(ax: Axes, norm: colors.Normalize, cmap: str, label: str, ticks: int = 3) -> None:
    """A thin horizontal colour bar under ``ax``: what its colours mean, ``ticks`` values labelled."""
    bar = ax.figure.colorbar(cm.ScalarMappable(norm, plt.get_cmap(cmap)), ax=ax, location="bottom",
                             fraction=0.06, pad=0.02, aspect=22)
    bar.set_ticks(np.linspace(norm.vmin, norm.vmax, ticks))
    bar.ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    bar.ax.tick_params(labelsize=6, length=2, pad=1)
    bar.set_label(label, fontsize=6, labelpad=1)


def grid(rows: int, cols: int, panel: float = 2.0, title: str | None = None) -> tuple[Figure, np.ndarray]:
    """A ``rows x cols`` figure of square panels; axes as a 2-D array."""
    fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, panel * rows + (0.4 if title else 0)), squeeze=False,
                             layout="constrained")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes
