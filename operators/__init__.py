"""Named layers of the zoo, each a configuration of ``neighborhoods.NeighborAggregator``.

``create(name, **kwargs)`` builds one by name; ``available(filter)`` lists the names.
"""

from .conv import Conv1d, Conv2d
from .registry import Example, available, create, example, family, register

__all__ = ["Conv1d", "Conv2d", "Example", "available", "create", "example", "family", "register"]
from .convnn import ConvNN1d, ConvNN2d  # noqa: E402
from .branching import BranchingConv2d  # noqa: E402

__all__ += ["BranchingConv2d", "ConvNN1d", "ConvNN2d"]
from .spectral import (CGNL1d, CGNL2d, CayleySNL1d, CayleySNL2d, CrissCrossAttention2d,  # noqa: E402
                       DoubleAttention1d, DoubleAttention2d, NonLocalStage1d, NonLocalStage2d, SNL1d, SNL2d)

__all__ += ["CGNL1d", "CGNL2d", "CayleySNL1d", "CayleySNL2d", "CrissCrossAttention2d", "DoubleAttention1d",
            "DoubleAttention2d", "NonLocalStage1d", "NonLocalStage2d", "SNL1d", "SNL2d"]
