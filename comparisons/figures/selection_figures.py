"""What each operator selects for one query pixel of the sample photo.

Every map comes from the layer itself: ``layer.neighborhood(x)``, then
``Neighborhood.query_map`` for the query located at the pixel (see :mod:`.maps`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .demos import DEMOS, N3_K, N3_PATCH, N3_TEMPERATURES, build, criss_cross_demo, demo, n3_demo
from .maps import neighborhood_of, pixel_map
from .photo import Photo, load_photo
from .plotting import QUERY_COLOUR, grid, plt, save, show_map
from .setting import Setting


def _photo_panel(ax, photo: Photo, pixel: tuple[int, int], title: str = "photo and query pixel") -> None:
    show_map(ax, photo.rgb, None, pixel, f"{title} {pixel}")


def overview(out_dir: Path, setting: Setting) -> list[Path]:
    """``overview.png``: one panel per demo operator, side by side."""
    photo = load_photo(setting.image, setting.size)
    fig, axes = grid(2, 5, panel=2.0)
    axes = axes.ravel()
    _photo_panel(axes[0], photo, setting.pixel)
    for ax, d in zip(axes[1:], DEMOS):
        nbhd = neighborhood_of(build(d.name, 3), photo.features)
        show_map(ax, photo.rgb, pixel_map(nbhd, setting.pixel), setting.pixel, d.title)
    for ax in axes[1 + len(DEMOS):]:
        ax.axis("off")
    return [save(fig, out_dir / "overview.png")]


def conv_window(out_dir: Path, setting: Setting) -> list[Path]:
    """``conv-window.png``: the 3x3 and 5x5 windows, inside the image and at its corner."""
    import operators

    photo = load_photo(setting.image, setting.size)
    fig, axes = grid(1, 5, panel=2.0)
    _photo_panel(axes[0, 0], photo, setting.pixel)
    corner = (0, setting.size - 1)
    panels = [(3, setting.pixel), (5, setting.pixel), (3, corner), (5, corner)]
    for ax, (kernel, pixel) in zip(axes[0, 1:], panels):
        torch.manual_seed(0)
        layer = operators.Conv2d(3, 3, kernel, padding=kernel // 2).double()
        where = "at the corner" if pixel == corner else ""
        show_map(ax, photo.rgb, pixel_map(layer.neighborhood(photo.features), pixel), pixel,
                 f"Conv2d {kernel}x{kernel} {where}".strip(), vmax=1.0)
    return [save(fig, out_dir / "conv-window.png")]


def convnn_similarity(out_dir: Path, setting: Setting) -> list[Path]:
    """``convnn-similarity.png``: ConvNN's 9 slots by feature, location and hybrid similarity."""
    photo = load_photo(setting.image, setting.size)
    fig, axes = grid(1, 4, panel=2.3)
    _photo_panel(axes[0, 0], photo, setting.pixel)
    for ax, name in zip(axes[0, 1:], ("conv_nn2d", "conv_nn2d_location", "conv_nn2d_hybrid")):
        nbhd = neighborhood_of(build(name, 3), photo.features)
        show_map(ax, photo.rgb, pixel_map(nbhd, setting.pixel), setting.pixel, demo(name).title, vmax=1.0)
    return [save(fig, out_dir / "convnn-similarity.png")]


def attention_map(out_dir: Path, setting: Setting) -> list[Path]:
    """``attention-map.png``: the attention row of the query, and the Gaussian non-local block's."""
    photo = load_photo(setting.image, setting.size)
    fig, axes = grid(1, 3, panel=2.6)
    _photo_panel(axes[0, 0], photo, setting.pixel)
    for ax, name in zip(axes[0, 1:], ("self_attention2d", "non_local_block2d_gaussian")):
        m = pixel_map(neighborhood_of(build(name, 3), photo.features), setting.pixel)
        show_map(ax, photo.rgb, m, setting.pixel, f"{demo(name).title}\nmax weight {m.max():.3f}, sum {m.sum():.2f}")
    return [save(fig, out_dir / "attention-map.png")]


def n3_neighbours(out_dir: Path, setting: Setting) -> list[Path]:
    """``n3-neighbours.png``: the k soft neighbour maps of the query patch, hot to cold."""
    photo = load_photo(setting.image, setting.size)
    fig, axes = grid(len(N3_TEMPERATURES), N3_K + 1, panel=2.1)
    for row, t in enumerate(N3_TEMPERATURES):
        nbhd = neighborhood_of(n3_demo(3, t).double().eval(), photo.features)
        q = nbhd.query_at(setting.pixel)
        top = divmod(q, nbhd.query_shape[1])  # stride 1: the patch's top-left pixel
        _photo_panel(axes[row, 0], photo, setting.pixel, f"t = {t:g}: query patch,\npixel")
        _box(axes[row, 0], top, N3_PATCH)
        for j in range(N3_K):
            w = nbhd.weight[0, q, :, j]
            effective = float(1.0 / (w ** 2).sum())  # how many patches the volume averages
            show_map(axes[row, j + 1], photo.rgb, pixel_map(nbhd, setting.pixel, slot=j), None,
                     f"t = {t:g}, volume N{j + 1}\n~{effective:.1f} patches (1 / sum w^2)")
            _box(axes[row, j + 1], top, N3_PATCH)
    return [save(fig, out_dir / "n3-neighbours.png")]


def criss_cross(out_dir: Path, setting: Setting) -> list[Path]:
    """``criss-cross.png``: the query's row and column, one step's weights, two steps' weights."""
    photo = load_photo(setting.image, setting.size)
    torch.manual_seed(0)
    nbhd = neighborhood_of(criss_cross_demo(3).double().eval(), photo.features)
    one = pixel_map(nbhd, setting.pixel)
    a = nbhd.to_dense().reshape(nbhd.num_queries, nbhd.num_keys)  # one slot: the affinity A
    q = nbhd.query_at(setting.pixel)
    two = (a @ a)[q].reshape(photo.size).numpy()  # row q of A^2: two steps
    fig, axes = grid(1, 3, panel=2.6)
    show_map(axes[0, 0], photo.rgb, (one > 0).astype(np.float64), setting.pixel,
             f"candidates: row + column\n({int((one > 0).sum())} = H + W - 1 pixels)", vmax=1.0)
    show_map(axes[0, 1], photo.rgb, one, setting.pixel, "one step: softmax over the cross")
    show_map(axes[0, 2], photo.rgb, two, setting.pixel, f"two steps (row of A^2)\nreaches {int((two > 0).sum())} pixels")
    return [save(fig, out_dir / "criss-cross.png")]


def _box(ax, top_left: tuple[int, int], size: int) -> None:
    r, c = top_left
    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), size, size, fill=False, edgecolor=QUERY_COLOUR, linewidth=1.4))
