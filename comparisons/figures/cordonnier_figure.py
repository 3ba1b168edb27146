"""``cordonnier-heads.png``: the 9 positional attention heads that are a 3x3 convolution.

Cordonnier et al. 2020 (Lemma 1): head ``h`` of :class:`operators.CordonnierAttention2d` puts
a Gaussian blob of weight around ``q + Delta_h``; as ``alpha`` grows each blob shrinks to
one pixel and the nine pixels are the 3x3 window. The maps are the layer's own
``neighborhood(x).query_map(q, head=h)`` for the figures' query pixel; the right panel measures
``max |layer(x) - conv(x)|`` on the photo against ``alpha`` with the proved bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .photo import load_photo
from .plotting import QUERY_COLOUR, WEIGHT_CMAP, plt, save
from .setting import Setting

#: the two widths drawn: soft blobs, and the convolution's one pixel per head
ALPHAS = (1.5, 46.0)
#: the widths of the error curve
CURVE = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0)
#: half-width of the crop around the query drawn for each head (the maps are zero farther out)
CROP = 4


def _layer(alpha: float):
    from operators import CordonnierAttention2d

    torch.manual_seed(0)
    return CordonnierAttention2d(3, 3, 3, alpha=alpha).double().eval()


def draw(out_dir: Path, setting: Setting) -> list[Path]:
    photo = load_photo(setting.image, setting.size)
    x = photo.features
    r, c = setting.pixel
    rows = slice(max(0, r - CROP), r + CROP + 1)
    cols = slice(max(0, c - CROP), c + CROP + 1)
    fig = plt.figure(figsize=(12, 4.4), layout="constrained")
    panels = fig.subfigures(1, 3, width_ratios=[1, 1, 1.2], wspace=0.02)
    image = None
    for sub, alpha in zip(panels[:2], ALPHAS):
        nbhd = _layer(alpha).neighborhood(x)
        q = nbhd.query_at(setting.pixel)
        axes = sub.subplots(3, 3)
        for h, ax in enumerate(axes.ravel()):
            m = nbhd.query_map(q, head=h).detach().numpy()[rows, cols]
            ax.imshow(photo.rgb[rows, cols] * 0.45, interpolation="nearest")
            image = ax.imshow(m, cmap=WEIGHT_CMAP, vmin=0.0, vmax=1.0, alpha=0.95 * np.sqrt(np.clip(m, 0, 1)),
                              interpolation="nearest")
            qr, qc = r - rows.start, c - cols.start
            ax.add_patch(plt.Rectangle((qc - 0.5, qr - 0.5), 1, 1, fill=False, edgecolor=QUERY_COLOUR, linewidth=1.2))
            dr, dc = (int(v) for v in nbhd_centre(h))
            ax.set_title(f"h{h}: Δ=({dr:+d},{dc:+d})", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        what = "soft blobs around q + Δ" if alpha < 10 else "one pixel each: the 3x3 window"
        sub.suptitle(f"α = {alpha:g}: {what}", fontsize=9)
    cbar = fig.colorbar(image, ax=panels[1].axes, location="right", shrink=0.8)
    cbar.set_label("weight of the pixel in head h", fontsize=8)
    ax = panels[2].subplots()
    errors, bounds = _error_curve(x)
    ax.semilogy(CURVE, errors, "o-", label="max |heads(x) − conv(x)| on the photo")
    ax.semilogy(CURVE, bounds, "--", color="grey", label="proved bound 2 ε(α) Σ_h max|W_h x|")
    ax.set_xlabel("α (inverse width of every head)")
    ax.set_ylabel("error")
    ax.set_title("9 heads → a 3x3 convolution as α grows", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return [save(fig, out_dir / "cordonnier-heads.png")]


def nbhd_centre(h: int) -> tuple[float, float]:
    """Head ``h``'s centre ``Delta_h`` (the kernel's offsets in raster order)."""
    from operators.cordonnier import kernel_offsets

    return tuple(kernel_offsets(3)[h].tolist())


def _error_curve(x: torch.Tensor) -> tuple[list[float], list[float]]:
    from operators import CordonnierAttention2d

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1).double()
    errors, bounds = [], []
    with torch.no_grad():
        target = conv(x)
        for alpha in CURVE:
            layer = CordonnierAttention2d.from_conv(conv, alpha=alpha)
            errors.append(max(float((layer(x) - target).abs().max()), 1e-17))
            bounds.append(layer.conv_error_bound(x))
    return errors, bounds
