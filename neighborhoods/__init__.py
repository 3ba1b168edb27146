"""The abstraction: every layer selects neighbours for each query, then combines them.

``NeighborAggregator(selector, combiner)``; a selector returns a :class:`Neighborhood`, a
combiner turns it into the output through :meth:`Neighborhood.aggregate`.
"""

from . import combiners, functional, selectors
from .aggregator import NeighborAggregator
from .neighborhood import Neighborhood
from .pointwise import ChannelLinear
from .tokens import from_tokens, to_tokens

__all__ = ["ChannelLinear", "NeighborAggregator", "Neighborhood", "combiners", "functional", "from_tokens", "selectors",
           "to_tokens"]
