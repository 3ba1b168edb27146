"""The docs figures: one job per figure module, run in order by ``neighbor-zoo figures``.

Each job draws from code and data only (the sample photo, the registry, the results under
``docs/results/``), with fixed seeds, so running it twice writes the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import (
    cordonnier_figure,
    explore_command,
    results_figures,
    selection_figures,
    similarity_figure,
    simplex_figure,
    spectrum_figure,
    walk_figure,
)
from .setting import Setting


@dataclass(frozen=True)
class Job:
    """One figure module: ``draw(out_dir, setting)`` writes its PNGs and returns their paths."""

    name: str
    draw: Callable[[Path, Setting], list[Path]]


JOBS: tuple[Job, ...] = (
    Job("every operator on the photo", selection_figures.overview),
    Job("convolution windows", selection_figures.conv_window),
    Job("ConvNN similarities", selection_figures.convnn_similarity),
    Job("attention weights", selection_figures.attention_map),
    Job("dot product against cosine", similarity_figure.draw),
    Job("N3 neighbour volumes", selection_figures.n3_neighbours),
    Job("criss-cross", selection_figures.criss_cross),
    Job("n3 relaxation on the simplex", lambda out, setting: simplex_figure.draw(out)),
    Job("the spectrum", spectrum_figure.draw),
    Job("saved ablation and benchmark results", lambda out, setting: results_figures.draw(out, setting.results)),
    Job("Cordonnier et al.: 9 attention heads are a 3x3 convolution", cordonnier_figure.draw),
    Job("one pixel walked along the spectrum", walk_figure.draw),
    Job("the explorer page", lambda out, setting: explorer_page(out, setting)),
)


def explorer_page(out_dir: Path, setting: Setting) -> list[Path]:
    """``explorer.html``: the interactive explorer at its defaults (the docs embed it)."""
    path = out_dir / "explorer.html"
    explore_command.write(path, setting)
    return [path]
