"""What the photo figures are drawn on (light: imported when the CLI builds its parser)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    """The input of every figure job.

    Attributes:
        image: a scikit-learn sample image (see :data:`~comparisons.figures.photo.IMAGES`).
        size: the photo's side after downscaling, in pixels.
        results: the folder of saved ablation and benchmark results (``docs/results``).
        query: the query pixel as fractions of the photo's height and width (on the flower's
            petal, near its left edge: the window sees petal and background alike).
    """

    image: str = "flower.jpg"
    size: int = 32
    results: Path = Path("docs/results")
    query: tuple[float, float] = (0.62, 0.28)

    @property
    def pixel(self) -> tuple[int, int]:
        """The query pixel ``(row, col)`` on the ``size x size`` photo."""
        return tuple(min(self.size - 1, round(f * self.size)) for f in self.query)


def pixel_arg(flag: str) -> Callable[[str], tuple[int, int]]:
    """An argparse type: ``ROW,COL``, two integers >= 0 (the photo's size is checked once it is known)."""

    def parse(text: str) -> tuple[int, int]:
        parts = text.split(",")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise argparse.ArgumentTypeError(f"{flag} must be ROW,COL (two integers >= 0), got {text!r}")
        return int(parts[0]), int(parts[1])

    parse.__name__ = "ROW,COL"
    return parse
