"""Dot product is not similarity: attention's scores against ConvNN's cosine on the photo.

Attention scores key ``j`` for query ``i`` by the dot product ``x_i . x_j = |x_i| |x_j|
cos(x_i, x_j)`` (Vaswani et al. 2017, Eq. 1; the non-local block's Gaussian affinity, Wang
et al. 2018, Eq. 2): a key with a larger norm (here: a brighter, more saturated pixel of the
standardised photo) can outscore the query's own colour. ConvNN's default similarity is the
cosine, ``x_i . x_j / (|x_i| |x_j|)``, which the query itself tops at 1. The numbers of the
docs' caption come from :func:`facts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .photo import load_photo
from .plotting import QUERY_COLOUR, grid, plt, save, show_map
from .setting import Setting

TOP_KEY_COLOUR = "#39ff14"


@dataclass(frozen=True)
class Facts:
    """What the figure shows, in numbers (pixels as ``(row, col)``; ranks from 1, ties to the smaller index).

    Attributes:
        query: the query pixel.
        dot_rank_of_query: where the query's own key ranks in its dot-product row.
        cosine_rank_of_query: the same in its cosine row (1: nothing is more similar).
        dot_top: the key with the largest dot product.
        query_norm, dot_top_norm: ``|x_i|`` and ``|x_top|``.
        cos_of_dot_top: ``cos(x_i, x_top)``.
        pixels: the number of keys.
    """

    query: tuple[int, int]
    dot_rank_of_query: int
    cosine_rank_of_query: int
    dot_top: tuple[int, int]
    query_norm: float
    dot_top_norm: float
    cos_of_dot_top: float
    pixels: int


def rows(setting: Setting) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dot, cosine, norm)``, each ``(H, W)`` float64: the query's scores against every pixel, and the norms."""
    photo = load_photo(setting.image, setting.size)
    x = photo.features[0].flatten(1).T  # (N, C): the standardised colours, what the operators see
    h, w = photo.size
    q = x[setting.pixel[0] * w + setting.pixel[1]]
    dot = x @ q
    norm = x.norm(dim=1)
    cosine = dot / (norm * q.norm()).clamp_min(torch.finfo(x.dtype).tiny)
    return dot.reshape(h, w).numpy(), cosine.reshape(h, w).numpy(), norm.reshape(h, w).numpy()


def _rank(row: np.ndarray, index: int) -> int:
    flat = row.ravel()
    return int((flat > flat[index]).sum() + (flat[:index] == flat[index]).sum()) + 1


def facts(setting: Setting = Setting()) -> Facts:
    """The numbers the caption of ``dot-vs-cosine.png`` quotes, computed from the photo."""
    dot, cosine, norm = rows(setting)
    w = dot.shape[1]
    q = setting.pixel[0] * w + setting.pixel[1]
    top = int(np.argmax(dot))
    return Facts(query=setting.pixel, dot_rank_of_query=_rank(dot, q), cosine_rank_of_query=_rank(cosine, q),
                 dot_top=divmod(top, w), query_norm=float(norm.flat[q]), dot_top_norm=float(norm.flat[top]),
                 cos_of_dot_top=float(cosine.flat[top]), pixels=dot.size)


def draw(out_dir: Path, setting: Setting) -> list[Path]:
    """``dot-vs-cosine.png``: the photo, the dot-product row, the cosine row, and dot against cosine."""
    photo = load_photo(setting.image, setting.size)
    dot, cosine, norm = rows(setting)
    f = facts(setting)
    fig, axes = grid(1, 4, panel=2.9)
    show_map(axes[0, 0], photo.rgb, None, f.query, f"photo: query {f.query} (cyan),\n"
             f"top dot-product key {f.dot_top} (green)")
    show_map(axes[0, 1], photo.rgb, dot, f.query,
             f"dot product x_i . x_j (attention's score)\nquery ranks {f.dot_rank_of_query} of {f.pixels}",
             label="x_i . x_j")
    show_map(axes[0, 2], photo.rgb, cosine, f.query,
             f"cosine (ConvNN's similarity)\nquery ranks {f.cosine_rank_of_query} of {f.pixels}", label="cos(x_i, x_j)")
    for ax in axes[0, :3]:
        r, c = f.dot_top
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=TOP_KEY_COLOUR, linewidth=1.6))
    ax = axes[0, 3]
    points = ax.scatter(cosine.ravel(), dot.ravel(), c=norm.ravel(), cmap="viridis", s=5)
    qr, qc = f.query
    ax.scatter([cosine[qr, qc]], [dot[qr, qc]], s=60, facecolors="none", edgecolors=QUERY_COLOUR, linewidths=1.5,
               label=f"query, |x| = {f.query_norm:.1f}")
    tr, tc = f.dot_top
    ax.scatter([cosine[tr, tc]], [dot[tr, tc]], s=60, facecolors="none", edgecolors=TOP_KEY_COLOUR,
               linewidths=1.5, label=f"top key, |x| = {f.dot_top_norm:.1f}")
    ax.set_xlabel("cos(x_i, x_j)", fontsize=7)
    ax.set_ylabel("x_i . x_j = |x_i| |x_j| cos", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="upper left")
    ax.set_title("every pixel: dot product against cosine\n(colour: the key's norm |x_j|)", fontsize=8)
    bar = fig.colorbar(points, ax=ax, location="bottom", fraction=0.06, pad=0.02, aspect=22)
    bar.ax.tick_params(labelsize=6)
    bar.set_label("|x_j|", fontsize=6)
    return [save(fig, out_dir / "dot-vs-cosine.png")]
