"""The data of the interactive explorer: every demo operator's ``query_map`` on a grid of query pixels.

The page is one HTML file with everything embedded (:mod:`.explore_command` writes it): the
photo, two colour tables, and for each panel the maps of every precomputed query pixel,
quantised to one byte per pixel for display (``round(255 * w / max w)`` per map, the map's
maximum kept as a float), zlib-compressed and base64-encoded. Everything the page *states*
is computed here in float64 before any rounding: how many pixels a query reads (weight
``!= 0``), the largest weight, the total. A click snaps to the nearest precomputed query
pixel; the grid always holds the figures' default query pixel (:class:`.setting.Setting`).

Variants behind the page's controls are precomputed: ConvNN's ``k``, the hybrid's lambda,
N3's temperature. A panel is one ``view`` (a picture on the page) at one choice of those
``params``; the page shows, for each view, the panel whose params match its controls.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

import operators

from .demos import N3_K, N3_PATCH, criss_cross_demo, n3_demo, neighborhood_attention_demo
from .maps import neighborhood_of
from .photo import load_photo
from .plotting import SIGNED_CMAP, WEIGHT_CMAP, plt
from .setting import Setting

#: N3 temperatures behind the slider, hot to cold
EXPLORER_TEMPERATURES = (10.0, 1.0, 0.1, 0.03)
#: ConvNN's k behind its control (9 = a 3 x 3 window's worth)
CONVNN_KS = (4, 9, 16, 25)
#: the hybrid similarity's lambda (feature weight) behind its control: 0 is position only, 1 colour only
HYBRID_LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

#: the formula under each view (plain text; the docs pages carry the rendered maths)
FORMULAS = {
    "conv2d": "y_i = Σ_{s ∈ 3×3} W_s x_{i+s}: a fixed window, one weight matrix per slot",
    "conv_nn2d": "slots = self + the k−1 largest cos(x_i, x_j); y_i = Σ_s W_s x_{slot s}",
    "conv_nn2d_location": "slots = the k nearest positions (Chebyshev, raster order); k = 9 is Conv2d 3×3",
    "conv_nn2d_hybrid": "slots = the k nearest in [λ·colour, (1−λ)·position]: λ = 0 position, λ = 1 colour",
    "neighborhood_attention2d": "w_ij = softmax_{j ∈ 7×7 window(i)}(x_i·x_j / √C), the window shifted inward at borders",
    "self_attention2d": "w_ij = softmax_j(x_i·x_j / √C) over all N pixels",
    "non_local_block2d_gaussian": "w_ij = softmax_j(x_i·x_j) over all N pixels (Gaussian non-local, Wang et al. 2018)",
    "criss_cross_attention2d": "w_ij = softmax over j in row(i) ∪ column(i): H + W − 1 keys (CCNet)",
    "n3": "w_j = softmax((s + Σ_{l<j} log(1 − w_l)) / t), s = −‖patch_i − patch_m‖²: volume j (Plötz & Roth 2018)",
}


@dataclass(frozen=True)
class View:
    """One picture on the page: its panels differ only by the ``params`` its controls choose."""

    key: str
    title: str
    formula: str
    variants: list[tuple[dict, Callable[[], nn.Module], int | None]] = field(default_factory=list)
    n3: bool = False


@dataclass(frozen=True)
class Panel:
    """One precomputed picture: ``maps`` ``(Q, H, W)`` float64, one per query pixel of the grid."""

    view: str
    params: dict
    maps: np.ndarray

    @property
    def key(self) -> str:
        return "|".join([self.view] + [f"{k}={v:g}" for k, v in sorted(self.params.items())])


def query_grid(size: int, step: int, anchor: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """The precomputed query pixels: every ``step``-th row and column, row-major.

    The grid holds ``anchor`` (default: centred on the photo), so the page can open on it.
    """
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= size:
        raise ValueError(f"step must be an int in [1, size={size}], got {step!r}")
    if anchor is not None and not all(0 <= a < size for a in anchor):
        raise ValueError(f"anchor must be a pixel of the {size} x {size} photo, got {anchor!r}")
    first = (step // 2, step // 2) if anchor is None else (anchor[0] % step, anchor[1] % step)
    return [(r, c) for r in range(first[0], size, step) for c in range(first[1], size, step)]


def _layer(name: str, **kwargs) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return getattr(operators, name)(3, **kwargs).double().eval()
    return build


def views() -> list[View]:
    """Every view of the page and its precomputed variants, in page order."""
    out = [
        View("conv2d", "Conv2d 3×3: a fixed window", FORMULAS["conv2d"],
             [({}, _layer("Conv2d", out_channels=3, kernel_size=3, padding=1), None)]),
        View("conv_nn2d_location", "ConvNN, location: k nearest positions", FORMULAS["conv_nn2d_location"],
             [({"k": k}, _layer("ConvNN2d", out_channels=3, k=k, similarity="location"), None) for k in CONVNN_KS]),
        View("conv_nn2d_hybrid", "ConvNN, hybrid: position and colour", FORMULAS["conv_nn2d_hybrid"],
             [({"k": k, "lambda": lam}, _layer("ConvNN2d", out_channels=3, k=k, similarity="hybrid",
                                               hybrid_lambda=lam), None)
              for k in CONVNN_KS for lam in HYBRID_LAMBDAS]),
        View("conv_nn2d", "ConvNN, cosine: k most similar colours", FORMULAS["conv_nn2d"],
             [({"k": k}, _layer("ConvNN2d", out_channels=3, k=k, similarity="cosine"), None) for k in CONVNN_KS]),
        View("neighborhood_attention2d", "neighbourhood attention 7×7", FORMULAS["neighborhood_attention2d"],
             [({}, lambda: neighborhood_attention_demo(3).double().eval(), None)]),
        View("self_attention2d", "self-attention: softmax over all", FORMULAS["self_attention2d"],
             [({}, _layer("SelfAttention2d", identity_projections=True), None)]),
        View("non_local_block2d_gaussian", "non-local block (Gaussian)", FORMULAS["non_local_block2d_gaussian"],
             [({}, _layer("NonLocalBlock2d", mode="gaussian", sub_sample=False), None)]),
        View("criss_cross_attention2d", "criss-cross: row + column", FORMULAS["criss_cross_attention2d"],
             [({}, lambda: criss_cross_demo(3).double().eval(), None)]),
    ]
    for j in range(N3_K):
        out.append(View(f"n3_slot{j}", f"N3 volume N{j + 1} ({N3_PATCH}×{N3_PATCH} patches)", FORMULAS["n3"],
                        [({"t": t}, (lambda t=t: n3_demo(3, t).double().eval()), j) for t in EXPLORER_TEMPERATURES],
                        n3=True))
    return out


def _maps(layer: nn.Module, x: torch.Tensor, pixels: list[tuple[int, int]], slot: int | None) -> np.ndarray:
    nbhd = neighborhood_of(layer, x)
    return np.stack([nbhd.query_map(nbhd.query_at(p), slot=slot).double().numpy() for p in pixels])


def panels(setting: Setting, step: int, query: tuple[int, int] | None = None
           ) -> tuple[list[Panel], list[tuple[int, int]]]:
    """Every panel of the page and the query pixels they were computed for (a grid through ``query``)."""
    photo = load_photo(setting.image, setting.size)
    pixels = query_grid(setting.size, step, setting.pixel if query is None else query)
    out = []
    with torch.no_grad():
        for view in views():
            for params, build, slot in view.variants:
                out.append(Panel(view.key, params, _maps(build(), photo.features, pixels, slot)))
    return out, pixels


def n3_patches(setting: Setting, pixels: list[tuple[int, int]]) -> list[list[int]]:
    """The top-left pixel of the N3 query patch of each query pixel (stride 1: a patch per pixel)."""
    photo = load_photo(setting.image, setting.size)
    with torch.no_grad():
        nbhd = neighborhood_of(n3_demo(3, 1.0).double().eval(), photo.features)
    cols = nbhd.query_shape[1]
    return [list(divmod(nbhd.query_at(p), cols)) for p in pixels]


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _zb64(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 9)).decode("ascii")


def encode(p: Panel) -> dict:
    """One panel, JSON-ready: display bytes plus the exact statistics the page prints."""
    q = p.maps.shape[0]
    flat = p.maps.reshape(q, -1)
    top = np.abs(flat).max(axis=1)  # (Q,)
    scale = np.where(top > 0, top, 1.0)[:, None]
    shown = np.round(255 * np.clip(np.abs(flat) / scale, 0, 1)).astype(np.uint8)
    return {"key": p.key, "view": p.view, "params": p.params, "maps": _zb64(shown),
            "max": _b64(top.astype("<f4")), "sum": _b64(flat.sum(axis=1).astype("<f4")),
            # how many pixels the query reads: weight != 0 in float64, before any rounding
            "count": _b64((flat != 0).sum(axis=1).astype("<u2"))}


def _lut(name: str) -> np.ndarray:
    return np.round(plt.get_cmap(name)(np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def page_data(setting: Setting, step: int = 2, query: tuple[int, int] | None = None) -> dict:
    """Everything the page needs, JSON-ready (arrays as base64 of little-endian bytes).

    The page opens on ``query`` (default: the figures' query pixel, ``setting.pixel``), which
    the grid of precomputed query pixels holds.
    """
    photo = load_photo(setting.image, setting.size)
    query = setting.pixel if query is None else tuple(query)
    all_panels, pixels = panels(setting, step, query)
    rgb = np.round(photo.rgb * 255).astype(np.uint8)  # (H, W, 3)
    return {
        "image": setting.image, "size": setting.size, "step": step,
        "queries": [list(p) for p in pixels], "default_query": list(query),
        "photo": _b64(rgb), "lut": _b64(_lut(WEIGHT_CMAP)), "signed_lut": _b64(_lut(SIGNED_CMAP)),
        "views": [{"key": v.key, "title": v.title, "formula": v.formula, "n3": v.n3,
                   "params": sorted(v.variants[0][0])} for v in views()],
        "controls": {"k": list(CONVNN_KS), "lambda": list(HYBRID_LAMBDAS), "t": list(EXPLORER_TEMPERATURES)},
        "defaults": {"k": 9, "lambda": 0.5, "t": 1.0},
        "n3_patch": N3_PATCH, "n3_patches": n3_patches(setting, pixels),
        "panels": [encode(p) for p in all_panels],
    }
