"""Selectors: which keys each query draws on, and with what weight."""

from .base import Selector
from .fixed_spatial import FixedSpatial
from .softmax_all import SoftmaxAll

__all__ = ["FixedSpatial", "Selector", "SoftmaxAll"]
