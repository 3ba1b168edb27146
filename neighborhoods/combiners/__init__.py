"""Combiners: how the selected neighbours become the output."""

from .base import Combiner
from .conv1d import Conv1D
from .graph_filter import CayleyFilter, GraphFilter, chebyshev
from .projection import Projection
from .stages import Stages
from .weighted_mean import WeightedMean

__all__ = ["CayleyFilter", "Combiner", "Conv1D", "GraphFilter", "Projection", "Stages", "WeightedMean", "chebyshev"]
