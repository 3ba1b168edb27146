"""``walk.png``: one pixel of the photo, walked along the spectrum (docs/walk.md).

Convolution -> ConvNN by location (the same window) -> hybrid -> by colour -> N3 cold (hard
k-NN of patches) -> N3 hot -> attention -> the Gaussian non-local block. Every map is the
layer's own ``neighborhood(x).query_map`` for the figures' query pixel, each panel with its own
colour bar (hard selections weigh 1 per pixel; soft ones spread a total mass).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .maps import pixel_map
from .photo import load_photo
from .plotting import QUERY_COLOUR, WEIGHT_CMAP, plt, save
from .setting import Setting

#: N3's temperatures for the cold and the hot step (scores are -|patch_q - patch_m|^2 on standardised colours)
COLD, HOT = 1e-3, 10.0


def n3(temperature: float) -> nn.Module:
    """The walk's N3 block: k = 3 volumes of raw 3 x 3 patches over the whole image, a fixed temperature."""
    import operators

    return operators.N3Block2d(3, k=3, patch_size=3, patch_stride=1, window=None, identity_projections=True,
                               temperature="scalar", temp_bias=temperature)


def steps() -> list[tuple[str, Callable[[], nn.Module]]]:
    """(panel title, layer builder) in the order of the walk."""
    import operators

    return [
        ("1 conv 3x3", lambda: operators.Conv2d(3, 3, 3, padding=1)),
        ("2 ConvNN location (= conv)", lambda: operators.ConvNN2d(3, 3, k=9, similarity="location")),
        ("3 ConvNN hybrid, λ = 0.5", lambda: operators.ConvNN2d(3, 3, k=9, similarity="hybrid", hybrid_lambda=0.5)),
        ("4 ConvNN features (cosine)", lambda: operators.ConvNN2d(3, 3, k=9, similarity="cosine")),
        (f"5 N3 cold, t = {COLD:g} (= hard k-NN)", lambda: n3(COLD)),
        (f"6 N3 hot, t = {HOT:g}", lambda: n3(HOT)),
        ("7 attention: softmax(x_i·x_j/√C)", lambda: operators.SelfAttention2d(3, identity_projections=True)),
        ("7' non-local (Gaussian)", lambda: operators.NonLocalBlock2d(3, mode="gaussian", sub_sample=False)),
    ]


def draw(out_dir: Path, setting: Setting) -> list[Path]:
    photo = load_photo(setting.image, setting.size)
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.6), layout="constrained")
    for ax, (title, make) in zip(axes.ravel(), steps()):
        torch.manual_seed(0)
        layer = make().double().eval()
        with torch.no_grad():
            m = pixel_map(layer.neighborhood(photo.features), setting.pixel)
        top = float(m.max()) if m.max() > 0 else 1.0
        ax.imshow(photo.rgb * 0.45, interpolation="nearest")
        image = ax.imshow(m, cmap=WEIGHT_CMAP, vmin=0.0, vmax=top, alpha=0.95 * np.sqrt(np.clip(m / top, 0, 1)),
                          interpolation="nearest")
        r, c = setting.pixel
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=QUERY_COLOUR, linewidth=1.6))
        ax.set_title(f"{title}\n{int((m > 1e-6).sum())} pixels > 1e-6, total weight {m.sum():.2f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"one pixel {setting.pixel} of the photo along the spectrum (query: cyan box; colour: weight)",
                 fontsize=10)
    return [save(fig, out_dir / "walk.png")]
