"""Selectors: which keys each query draws on, and with what weight."""

from .base import Selector
from .dense_affinity import DenseAffinity
from .fixed_spatial import FixedSpatial
from .hard_knn import HardKNN
from .softmax_all import SoftmaxAll

__all__ = ["DenseAffinity", "FixedSpatial", "Selector", "SoftmaxAll"]
__all__ += ["HardKNN"]

from .compact_affinity import CompactAffinity
from .criss_cross import CrissCross

__all__ += ["CompactAffinity", "CrissCross"]
