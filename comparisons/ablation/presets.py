"""Named sweeps of ``compare --preset``: the default ablation, the selector ablation, the poster's studies.

``selection`` holds the combiner fixed (``Conv1D``: a weight matrix per slot) and swaps how
neighbours are chosen: a fixed 3x3 window, hard k-NN by features, by features + position
(hybrid) or among randomly sampled candidates, N3's continuous k-NN, and softmax over all.
``k``, ``samples`` and ``ratio`` are the ConvNN poster's three studies in miniature:
accuracy vs k (Conv2d vs branching ConvNN), vs the number of sampled candidates (random vs
spatial), and vs the branching ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .specs import DEFAULT_MIXERS, DEFAULT_OPERATORS, OperatorSpec

K = 9
#: ``--vary selector``: label -> selector description, each with K slots (softmax-all has one)
SELECTOR_VARIANTS: dict[str, dict[str, Any]] = {
    "fixed-window": {"type": "FixedSpatial", "kernel_size": 3},
    "knn-feature": {"type": "HardKNN", "k": K, "space": "features"},
    "knn-hybrid": {"type": "HardKNN", "k": K, "space": "hybrid"},
    "knn-sampled": {"type": "HardKNN", "k": K, "space": "features", "sampling": "random", "samples": 12},
    "n3-continuous": {"type": "N3", "k": K},
    "softmax-all": {"type": "SoftmaxAll", "num_heads": 1},
}


def vary_selector(combiner: Mapping[str, Any] | None = None) -> tuple[OperatorSpec, ...]:
    """One operator per :data:`SELECTOR_VARIANTS` entry, all with the same ``combiner`` (default Conv1D)."""
    combiner = dict(combiner or {"type": "Conv1D"})
    return tuple(OperatorSpec(label=label, selector=dict(sel), combiner=dict(combiner))
                 for label, sel in SELECTOR_VARIANTS.items())


def _named(*entries: tuple[str, str, dict[str, Any]]) -> tuple[OperatorSpec, ...]:
    return tuple(OperatorSpec(label=label, name=name, kwargs=kwargs) for label, name, kwargs in entries)


@dataclass(frozen=True)
class Preset:
    """A named sweep: its operators and, where it needs them, a task, backbone or recipe."""

    name: str
    description: str
    operators: tuple[OperatorSpec, ...]
    task: str | None = None
    backbone: str | None = None


def _k_study() -> tuple[OperatorSpec, ...]:
    # k = s*s slots: a s x s conv window, or a branching layer whose ConvNN half takes k neighbours
    convs = [(f"conv2d k={s * s}", "conv2d", dict(kernel_size=s, padding="same")) for s in (1, 2, 3, 4)]
    branching = [(f"branching k={s * s}", "branching_conv2d", dict(ratio=0.5, k=s * s, kernel_size=s))
                 for s in (1, 2, 3, 4)]
    return _named(*convs, *branching)


def _samples_study() -> tuple[OperatorSpec, ...]:
    # the poster's setting: branching ratio 0.25 with hybrid (location + feature) similarity;
    # random sampling draws n*n candidates, spatial sampling an n x n sub-grid
    base = dict(ratio=0.25, similarity="hybrid", k=4)
    return _named(*[(f"random n={n}x{n}", "branching_conv2d", dict(base, sampling="random", samples=n * n))
                    for n in (2, 3, 4)],
                  *[(f"spatial n={n}x{n}", "branching_conv2d", dict(base, sampling="spatial", samples=n))
                    for n in (2, 3, 4)])


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("default", "digits ablation: " + ", ".join(DEFAULT_OPERATORS),
           tuple(OperatorSpec(label=n, name=n) for n in DEFAULT_OPERATORS)),
    Preset("selection", "how neighbours are chosen, Conv1D combiner fixed: " + ", ".join(SELECTOR_VARIANTS),
           vary_selector()),
    Preset("k", "accuracy vs k: conv2d (s x s window) vs branching ConvNN (ratio 0.5, k = s*s)", _k_study()),
    Preset("samples", "accuracy vs sampled candidates: random vs spatial sampling (branching 0.25, hybrid, k=4)",
           _samples_study()),
    Preset("ratio", "branching ratio sweep: 0 (all Conv2d) to 1 (all ConvNN)",
           _named(*[(f"ratio={r:g}", "branching_conv2d", dict(ratio=r)) for r in (0.0, 0.25, 0.5, 0.75, 1.0)])),
    Preset("vit", "ViT token mixers on digits: " + ", ".join(DEFAULT_MIXERS),
           tuple(OperatorSpec(label=n, name=n) for n in DEFAULT_MIXERS), backbone="vit"),
    Preset("denoise", "the N3 paper's ablation in miniature: the aggregation block between two DnCNN stages",
           tuple(OperatorSpec(label=n, name=n) for n in ("identity", "conv2d", "convnn", "attention", "nonlocal",
                                                           "n3")), task="denoise"),
)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choices: {', '.join(PRESETS)}")
    return PRESETS[name]
