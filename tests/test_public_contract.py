"""The public names DESIGN.md promises exist, and data flows one way between the packages."""

import ast
import inspect
from pathlib import Path

import pytest

import neighborhoods
import operators
from comparisons.cli import build_parser
from neighborhoods import combiners, functional, selectors

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("module, names", [
    (neighborhoods, ["NeighborAggregator", "Neighborhood"]),
    (selectors, ["FixedSpatial", "HardKNN", "SoftmaxAll", "N3"]),
    (combiners, ["Conv1D", "WeightedMean", "Projection"]),
    (functional, ["knn", "continuous_knn", "similarity", "gather", "window_index"]),
    (operators, ["Conv1d", "Conv2d", "ConvNN1d", "ConvNN2d", "BranchingConv2d", "SelfAttention", "SelfAttention2d",
                 "NonLocalBlock1d", "NonLocalBlock2d", "N3Block2d", "KNNBlock2d", "NonLocalStage2d",
                 "DoubleAttention2d", "CGNL2d", "CrissCrossAttention2d", "SNL2d", "CayleySNL2d", "create",
                 "NonLocalStage", "DoubleAttention", "CGNL", "CrissCrossAttention", "SNL", "CayleySNL",
                 "available"]),
])
def test_public_names(module, names):
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module.__name__} lacks {missing}"


def test_every_named_operator_is_a_neighbor_aggregator():
    # BranchingConv2d is the one composite: two aggregators side by side
    for name in operators.available():
        cls = operators.registry.constructor(name)
        cls = getattr(cls, "func", cls)
        assert issubclass(cls, neighborhoods.NeighborAggregator) or cls is operators.BranchingConv2d, name


def test_knn_and_continuous_knn_signatures():
    assert list(inspect.signature(functional.knn).parameters)[:4] == ["queries", "keys", "k", "metric"]
    assert list(inspect.signature(functional.continuous_knn).parameters)[:3] == ["scores", "k", "temperature"]


def test_cli_commands():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"verify", "list"} <= set(sub.choices)


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("neighborhoods", {"operators", "comparisons"}),
    ("operators", {"comparisons"}),
])
def test_data_flows_one_way(package, forbidden):
    assert not (_imports(package) & forbidden), f"{package} imports {_imports(package) & forbidden}"
