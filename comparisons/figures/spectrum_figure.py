"""The spectrum: every registered operator placed by how its neighbourhood is chosen, with pictures.

Placement comes from the registry alone (``operators.info(name)``): the selection kind
(fixed window, hard content-based choice, soft content-based choice, dense weights over
every key) on one axis, local or global on the other. A composite (``BranchingConv2d``:
``"hard content + fixed"``) sits between its parts. Each family of the spectrum is drawn as
what it reads for the figures' query pixel of the photo (``neighborhood(x).query_map``,
through :mod:`.maps`): the convolution window, ConvNN's picks, the neighbourhood-attention
window, N3's soft volumes, criss-cross's row and column, full attention.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np

import operators

from .demos import build
from .maps import neighborhood_of, pixel_map
from .photo import load_photo
from .plotting import plt, save, show_map
from .setting import Setting

#: the selection kinds from fixed to fully content-based, left to right
SELECTIONS = ("fixed", "hard content", "soft content", "dense")
LOCALITIES = ("local", "global")
_LABELS = {"fixed": "fixed\n(position only)", "hard content": "hard, by content\n(k chosen)",
           "soft content": "soft, by content\n(weights on a candidate set)", "dense": "dense\n(every key weighted)"}
#: the pictured family of each cell: (registered demo name, picture title)
PICTURES = {
    ("fixed", "local"): [("conv2d", "conv window 3x3")],
    ("hard content", "global"): [("conv_nn2d", "ConvNN: 9 picks (cosine)")],
    ("soft content", "local"): [("neighborhood_attention2d", "neighbourhood attn 7x7"),
                                ("n3_block2d", "N3: 3 soft volumes")],
    ("soft content", "global"): [("criss_cross_attention2d", "criss-cross")],
    ("dense", "global"): [("self_attention2d", "full attention")],
}


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


def _check_pictures() -> None:
    """Every pictured operator sits in the cell it is pictured in (the registry says where)."""
    for (selection, locality), pictured in PICTURES.items():
        for name, _ in pictured:
            info = operators.info(name)
            if (info.selection, info.locality) != (selection, locality):
                raise ValueError(f"{name} is pictured under ({selection}, {locality}) but the registry places it at "
                                 f"({info.selection}, {info.locality})")


def draw(out_dir: Path, setting: Setting = Setting()) -> list[Path]:
    """``spectrum.png``: a cell per (selection, locality), its family pictured and its operators listed."""
    _check_pictures()
    photo = load_photo(setting.image, setting.size)
    cells = placements()
    fig = plt.figure(figsize=(15, 9.4), layout="constrained")
    # a header row and a label column around the len(LOCALITIES) x len(SELECTIONS) cells
    outer = fig.add_gridspec(1 + len(LOCALITIES), 1 + len(SELECTIONS), height_ratios=(0.1, 1, 1),
                             width_ratios=(0.06, 1, 1, 1, 1))
    between = []
    for (x, y), names in sorted(cells.items()):
        if x != int(x) or y != int(y):  # a composite between cells
            between += [f"{n.split()[0]} (between {', '.join(_between(x, y))})" for n in names]
            continue
        selection, locality = SELECTIONS[int(x)], LOCALITIES[int(y)]
        row = len(LOCALITIES) - 1 - int(y)  # global on top
        pictured = PICTURES.get((selection, locality), [])
        inner = outer[1 + row, 1 + int(x)].subgridspec(2, max(1, len(pictured)), height_ratios=(1.5, 1))
        for i, (name, title) in enumerate(pictured):
            ax = fig.add_subplot(inner[0, i])
            m = pixel_map(neighborhood_of(build(name, 3), photo.features), setting.pixel)
            show_map(ax, photo.rgb, m, setting.pixel, title)
        text = fig.add_subplot(inner[1, :])
        text.axis("off")
        listing = ", ".join(n.replace("  ", " ") for n in sorted(names))
        text.text(0.5, 0.98, textwrap.fill(listing, 62 if len(pictured) < 2 else 62), ha="center", va="top",
                  fontsize=6.5, family="monospace", transform=text.transAxes,
                  bbox=dict(boxstyle="round,pad=0.4", facecolor="#eef3fb" if locality == "global" else "#fbf3e8",
                            edgecolor="#889", linewidth=0.6))
    for col, selection in enumerate(SELECTIONS):
        ax = fig.add_subplot(outer[0, 1 + col])
        ax.axis("off")
        ax.text(0.5, 0.5, _LABELS[selection], ha="center", va="center", fontsize=10, weight="bold")
    for row, locality in enumerate(reversed(LOCALITIES)):
        ax = fig.add_subplot(outer[1 + row, 0])
        ax.axis("off")
        ax.text(0.5, 0.5, {"local": "local (a window)", "global": "global (the whole input)"}[locality],
                ha="center", va="center", rotation=90, fontsize=10, weight="bold")
    footer = "from a fixed window (left) to weights chosen by content over every key (right)"
    if between:
        footer += ";  between cells: " + "; ".join(between)
    fig.supxlabel(footer, fontsize=8, color="grey")
    fig.suptitle(f"The spectrum: what each family reads for pixel {setting.pixel} of the photo (colour: weight), and "
                 f"every registered operator by how it selects (name, cost; from operators.info)", fontsize=10)
    return [save(fig, out_dir / "spectrum.png")]


def _between(x: float, y: float) -> list[str]:
    sel = [SELECTIONS[i] for i in sorted({int(np.floor(x)), int(np.ceil(x))})]
    loc = [LOCALITIES[i] for i in sorted({int(np.floor(y)), int(np.ceil(y))})]
    return [" + ".join(sel), " + ".join(loc)]
