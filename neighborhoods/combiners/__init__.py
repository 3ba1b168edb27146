"""Combiners: how the selected neighbours become the output."""

from .base import Combiner
from .conv1d import Conv1D
from .weighted_mean import WeightedMean

__all__ = ["Combiner", "Conv1D", "WeightedMean"]
from .projection import Projection

__all__ += ["Projection"]
