"""Every theorem the library claims; importing this package registers them all."""

from . import conv  # noqa: F401  (registers)
from . import convnn  # noqa: F401  (registers)
from .base import THEOREMS, Theorem, Trial, Verdict, select, theorem, verify

__all__ = ["THEOREMS", "Theorem", "Trial", "Verdict", "select", "theorem", "verify"]
from . import spectral  # noqa: F401  (registers)
