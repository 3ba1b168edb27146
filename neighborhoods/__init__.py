"""The abstraction: every layer selects neighbours for each query, then combines them.

``NeighborAggregator(selector, combiner)``; a selector returns a :class:`Neighborhood`, a
combiner turns it into the output through :meth:`Neighborhood.aggregate`. Where a native
kernel computes a pair, a fast path registered for it (:mod:`neighborhoods.fast_paths`) runs
instead; ``with use_path("reference"):`` switches every layer to the explicit neighbourhood.
"""

#: the distribution's version, for all three packages (pyproject.toml reads it from here)
__version__ = "0.2.0.dev0"

from . import checks, combiners, fast_paths, functional, selectors
from .aggregator import NeighborAggregator
from .neighborhood import Neighborhood
from .paths import current_path, use_path
from .pointwise import ChannelLinear
from .tokens import from_tokens, to_tokens

__all__ = ["__version__", "ChannelLinear", "NeighborAggregator", "Neighborhood", "checks", "combiners", "current_path", "fast_paths",
           "functional", "from_tokens", "selectors", "to_tokens", "use_path"]
