"""Named layers of the zoo, each a configuration of ``neighborhoods.NeighborAggregator``.

``create(name, **kwargs)`` builds one by name; ``available(filter)`` lists the names.
"""

from .conv import Conv1d, Conv2d
from .registry import Example, available, create, example, family, register

__all__ = ["Conv1d", "Conv2d", "Example", "available", "create", "example", "family", "register"]
from .attention import SelfAttention, SelfAttention2d
from .n3 import KNNBlock2d, N3Block1d, N3Block2d
from .non_local import NonLocalBlock1d, NonLocalBlock2d

__all__ += ["KNNBlock2d", "N3Block1d", "N3Block2d", "NonLocalBlock1d", "NonLocalBlock2d", "SelfAttention",
            "SelfAttention2d"]
