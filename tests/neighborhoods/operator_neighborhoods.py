"""The neighbourhoods of every registered operator's example, for registry-driven tests."""

import torch

import operators
from neighborhoods import Neighborhood, NeighborAggregator
from operators.info import part_inputs

NAMES = operators.available()


def aggregators(layer: torch.nn.Module) -> list[NeighborAggregator]:
    """The layer itself, or, for a composite (BranchingConv2d), every NeighborAggregator inside it."""
    if isinstance(layer, NeighborAggregator):
        return [layer]
    return [m for m in layer.modules() if isinstance(m, NeighborAggregator)]


def example_neighborhoods(name: str) -> list[tuple[Neighborhood, torch.Tensor]]:
    """``(neighborhood, x)`` in float64 for each aggregator of the registry example of ``name``.

    A composite's part gets the input it sees when the layer runs (RCCA2d's attention reads its
    3x3 conv's output, not the layer's input).
    """
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs).double()
    x = torch.randn(*ex.input_shape, dtype=torch.float64)
    parts = aggregators(layer)
    inputs = part_inputs(layer, parts, x)
    return [(agg.neighborhood(xp), xp) for agg, xp in zip(parts, inputs)]
