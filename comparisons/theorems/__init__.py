"""Every theorem the library claims; importing this package registers them all."""

from . import attention, conv, convnn, n3, spectral  # noqa: F401  (registers)
from .base import THEOREMS, Theorem, Trial, Verdict, select, theorem, verify

__all__ = ["THEOREMS", "Theorem", "Trial", "Verdict", "select", "theorem", "verify"]
