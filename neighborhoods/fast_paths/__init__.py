"""Native-kernel twins of reference configurations, one module per native op.

Each twin computes exactly what ``combiner(x, selector(x))`` computes, through a native op,
for the configurations its ``why_not`` accepts (see :mod:`.registry`). Importing this
package registers them all; the aggregator consults only :mod:`.registry`.
"""

from . import attention, convolution, hard_knn, neighborhood_attention, taylor  # noqa: F401  (each module registers its twins)
from .registry import FastPath, fast_path, lookup, registered, why_not

__all__ = ["FastPath", "fast_path", "lookup", "registered", "why_not"]
