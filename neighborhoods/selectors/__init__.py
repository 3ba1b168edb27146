"""Selectors: which keys each query draws on, and with what weight."""

from .base import Selector
from .compact_affinity import CompactAffinity
from .concat_affinity import ConcatAffinity
from .criss_cross import CrissCross
from .dense_affinity import DenseAffinity
from .fixed_spatial import FixedSpatial
from .hard_knn import HardKNN
from .n3 import N3
from .neighborhood_window import NeighborhoodWindow
from .quadratic_position import QuadraticPositional
from .softmax_all import SoftmaxAll

__all__ = ["CompactAffinity", "ConcatAffinity", "CrissCross", "DenseAffinity", "FixedSpatial", "HardKNN", "N3",
           "NeighborhoodWindow", "QuadraticPositional", "Selector", "SoftmaxAll"]
