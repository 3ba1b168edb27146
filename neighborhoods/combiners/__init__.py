"""Combiners: how the selected neighbours become the output."""

from .base import Combiner
from .conv1d import Conv1D
from .projection import Projection
from .weighted_mean import WeightedMean

__all__ = ["Combiner", "Conv1D", "Projection", "WeightedMean"]
