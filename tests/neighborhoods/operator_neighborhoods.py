"""The neighbourhoods of every registered operator's example, for registry-driven tests."""

import torch

import operators
from neighborhoods import Neighborhood, NeighborAggregator

NAMES = operators.available()


def aggregators(layer: torch.nn.Module) -> list[NeighborAggregator]:
    """The layer itself, or, for a composite (BranchingConv2d), every NeighborAggregator inside it."""
    if isinstance(layer, NeighborAggregator):
        return [layer]
    return [m for m in layer.modules() if isinstance(m, NeighborAggregator)]


def example_neighborhoods(name: str) -> list[tuple[Neighborhood, torch.Tensor]]:
    """``(neighborhood, x)`` in float64 for each aggregator of the registry example of ``name``."""
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs).double()
    x = torch.randn(*ex.input_shape, dtype=torch.float64)
    return [(agg.neighborhood(x), x) for agg in aggregators(layer)]
