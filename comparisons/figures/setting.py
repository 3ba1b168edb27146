"""What the photo figures are drawn on (light: imported when the CLI builds its parser)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    """The input of every figure job.

    Attributes:
        image: a scikit-learn sample image (see :data:`~comparisons.figures.photo.IMAGES`).
        size: the photo's side after downscaling, in pixels.
        results: the folder of saved ablation and benchmark results (``docs/results``).
    """

    image: str = "flower.jpg"
    size: int = 32
    results: Path = Path("docs/results")
