"""Selectors: which keys each query draws on, and with what weight."""

from .base import Selector
from .concat_affinity import ConcatAffinity
from .dense_affinity import DenseAffinity
from .fixed_spatial import FixedSpatial
from .hard_knn import HardKNN
from .n3 import N3
from .softmax_all import SoftmaxAll

__all__ = ["ConcatAffinity", "DenseAffinity", "FixedSpatial", "HardKNN", "N3", "Selector", "SoftmaxAll"]
