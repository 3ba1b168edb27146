"""The data of the interactive explorer: every demo operator's ``query_map`` on a grid of query pixels.

The page is one HTML file with everything embedded (:mod:`.explore_command` writes it): the
photo, a colour table, and for each panel the maps of every precomputed query pixel,
quantised to one byte per pixel (``round(255 * w / max w)`` per map, the map's maximum kept
as a float) and base64-encoded. A click snaps to the nearest precomputed query pixel.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import torch

from .demos import DEMOS, N3_K, build, n3_demo
from .maps import neighborhood_of
from .photo import load_photo
from .plotting import WEIGHT_CMAP, plt
from .setting import Setting

#: N3 temperatures behind the slider, hot to cold
EXPLORER_TEMPERATURES = (10.0, 1.0, 0.1, 0.03)


@dataclass(frozen=True)
class Panel:
    """One picture of the page: ``maps`` ``(Q, H, W)``, one per precomputed query pixel."""

    key: str
    title: str
    maps: np.ndarray


def query_grid(size: int, step: int) -> list[tuple[int, int]]:
    """The precomputed query pixels: every ``step``-th row and column, row-major."""
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= size:
        raise ValueError(f"step must be an int in [1, size={size}], got {step!r}")
    first = step // 2  # centre the grid on the photo
    return [(r, c) for r in range(first, size, step) for c in range(first, size, step)]


def _maps(layer: torch.nn.Module, x: torch.Tensor, pixels: list[tuple[int, int]],
          slot: int | None = None) -> np.ndarray:
    nbhd = neighborhood_of(layer, x)
    return np.stack([nbhd.query_map(nbhd.query_at(p), slot=slot).double().numpy() for p in pixels])


def panels(setting: Setting, step: int) -> tuple[list[Panel], list[tuple[int, int]]]:
    """Every panel of the page and the query pixels they were computed for."""
    photo = load_photo(setting.image, setting.size)
    pixels = query_grid(setting.size, step)
    out = []
    with torch.no_grad():
        for d in DEMOS:
            if d.slots is None:  # N3 gets its own panels, one per volume and temperature
                out.append(Panel(d.name, d.title, _maps(build(d.name, 3), photo.features, pixels)))
        for i, t in enumerate(EXPLORER_TEMPERATURES):
            layer = n3_demo(3, t).double().eval()
            for j in range(N3_K):
                out.append(Panel(f"n3_t{i}_slot{j}", f"N3 volume N{j + 1}", _maps(layer, photo.features, pixels, j)))
    return out, pixels


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def page_data(setting: Setting, step: int = 2) -> dict:
    """Everything the page needs, JSON-ready (arrays as base64 of little-endian bytes)."""
    photo = load_photo(setting.image, setting.size)
    all_panels, pixels = panels(setting, step)
    rgb = np.round(photo.rgb * 255).astype(np.uint8)  # (H, W, 3)
    lut = np.round(plt.get_cmap(WEIGHT_CMAP)(np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    encoded = []
    for p in all_panels:
        top = np.abs(p.maps).reshape(len(pixels), -1).max(axis=1)  # (Q,)
        scale = np.where(top > 0, top, 1.0)[:, None, None]
        q = np.round(255 * np.clip(p.maps / scale, 0, 1)).astype(np.uint8)  # weights here are >= 0
        encoded.append({"key": p.key, "title": p.title, "maps": _b64(q),
                        "max": _b64(top.astype("<f4")), "sum": _b64(p.maps.sum(axis=(1, 2)).astype("<f4"))})
    return {
        "image": setting.image, "size": setting.size, "step": step,
        "queries": [list(p) for p in pixels], "default_query": list(setting.pixel),
        "photo": _b64(rgb), "lut": _b64(lut),
        "temperatures": list(EXPLORER_TEMPERATURES), "n3_k": N3_K,
        "panels": encoded,
    }
