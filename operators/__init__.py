"""Named layers of the zoo, each a configuration of ``neighborhoods.NeighborAggregator``.

``create(name, in_channels=C, out_channels=None, **kwargs)`` builds one by name (any case,
old names as aliases); ``available(filter)`` lists the names; ``info(name)`` says what an
operator is (layout, selection kind, locality, cost class, fast path).
"""

from neighborhoods import __version__

from .attention import SelfAttention, SelfAttention2d
from .branching import BranchingConv1d, BranchingConv2d
from .conv import Conv1d, Conv2d
from .convnn import ConvNN1d, ConvNN2d
from .cordonnier import CordonnierAttention2d
from .identity import Identity1d, Identity2d
from .n3 import KNNBlock2d, N3Block1d, N3Block2d
from .neighborhood_attention import NeighborhoodAttention1d, NeighborhoodAttention2d, NeighborhoodAttention3d
from .non_local import NonLocalBlock1d, NonLocalBlock2d
from .volumetric import Conv3d, ConvNN3d, NonLocalBlock3d, SelfAttention3d
from .rcca import RCCA2d
from .info import OperatorInfo, info
from .convert import convert
from .swap import SwapEntry, SwapReport, swap
from .registry import Example, aliases, available, canonical, create, example, family, match, register
from .spectral import (CGNL, SNL, CayleySNL, CayleySNL1d, CayleySNL2d, CGNL1d, CGNL2d, CrissCrossAttention,
                       CrissCrossAttention2d, DoubleAttention, DoubleAttention1d, DoubleAttention2d, NonLocalStage,
                       NonLocalStage1d, NonLocalStage2d, NonLocalStages, NonLocalStages1d, NonLocalStages2d, SNL1d,
                       SNL2d)

__all__ = [
    "__version__", "CGNL", "SNL", "BranchingConv1d", "BranchingConv2d", "CGNL1d", "CGNL2d", "CayleySNL", "CayleySNL1d",
    "CayleySNL2d", "Conv1d", "Conv2d", "Conv3d", "ConvNN1d", "ConvNN2d", "ConvNN3d", "CordonnierAttention2d",
    "CrissCrossAttention",
    "CrissCrossAttention2d", "DoubleAttention",
    "DoubleAttention1d", "DoubleAttention2d", "Example", "Identity1d", "Identity2d", "KNNBlock2d", "N3Block1d",
    "NeighborhoodAttention1d", "NeighborhoodAttention2d", "NeighborhoodAttention3d", "N3Block2d", "NonLocalBlock1d",
    "NonLocalBlock2d", "NonLocalBlock3d", "NonLocalStage", "NonLocalStage1d", "NonLocalStage2d", "NonLocalStages",
    "NonLocalStages1d", "NonLocalStages2d", "OperatorInfo", "RCCA2d", "SNL1d", "SNL2d",
    "SelfAttention", "SelfAttention2d", "SelfAttention3d", "aliases", "available", "canonical", "create", "example", "family", "info",
    "match", "register", "convert", "swap", "SwapReport", "SwapEntry",
]
