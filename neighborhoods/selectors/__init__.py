"""Selectors: which keys each query draws on, and with what weight."""

from .base import Selector
from .dense_affinity import DenseAffinity
from .fixed_spatial import FixedSpatial
from .softmax_all import SoftmaxAll

__all__ = ["DenseAffinity", "FixedSpatial", "Selector", "SoftmaxAll"]
from .concat_affinity import ConcatAffinity
from .n3 import N3

__all__ += ["ConcatAffinity", "N3"]
