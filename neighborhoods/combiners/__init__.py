"""Combiners: how the selected neighbours become the output."""

from .base import Combiner
from .conv1d import Conv1D
from .weighted_mean import WeightedMean

__all__ = ["Combiner", "Conv1D", "WeightedMean"]
from .graph_filter import CayleyFilter, GraphFilter, chebyshev

__all__ += ["CayleyFilter", "GraphFilter", "chebyshev"]
