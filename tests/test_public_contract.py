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
    # the composites place aggregators side by side or in sequence
    composites = (operators.BranchingConv1d, operators.BranchingConv2d, operators.RCCA2d)
    for name in operators.available():
        cls = operators.registry.constructor(name)
        cls = getattr(cls, "func", cls)
        assert issubclass(cls, neighborhoods.NeighborAggregator) or cls in composites, name


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


#: comparisons/ holds these and nothing else at its top (DESIGN.md, "Layout")
ROOMS = ("theorems", "ablation", "bench", "figures")
#: room -> the rooms (or a room's subpackage) it may import; every room may import neighborhoods and operators
ALLOWED_ARROWS = {
    "theorems": {"ablation.backbones"},  # a network theorem builds the project's backbones from there
    "ablation": set(),
    "bench": set(),
    "figures": {"ablation", "bench"},  # drawing saved compare results and the saved bench JSON
}


def _room_arrows() -> set[tuple[str, str, str]]:
    """``(room, imported module below comparisons, name)`` for every import from one room into another.

    Relative imports are resolved against the importing file's package, so ``from ..bench import x``
    counts like ``from comparisons.bench import x``; ``import comparisons.x.y`` gives the name ``*``.
    """
    arrows = set()
    for room in ROOMS:
        for path in (ROOT / "comparisons" / room).rglob("*.py"):
            package = list(path.relative_to(ROOT).parent.parts)  # ['comparisons', room, ...]
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    base = package[: len(package) - node.level + 1] if node.level else []
                    module = ".".join(base + ([node.module] if node.module else []))
                    targets = [(module, alias.name) for alias in node.names]
                    if node.module is None:  # `from .. import bench`: the name is the module
                        targets = [(f"{module}.{alias.name}", "*") for alias in node.names]
                elif isinstance(node, ast.Import):
                    targets = [(alias.name, "*") for alias in node.names]
                else:
                    continue
                for module, name in targets:
                    parts = module.split(".")
                    if parts[0] == "comparisons" and len(parts) > 1 and parts[1] != room:
                        arrows.add((room, ".".join(parts[1:]), name))
    return arrows


#: the one module the rooms share: the CLI's usage-error rule (issue 19), which imports no room
SHARED = "usage"


def test_comparisons_is_four_rooms_and_a_dispatcher():
    top = {p.name for p in (ROOT / "comparisons").iterdir() if p.name != "__pycache__"}
    assert top == {"__init__.py", "cli.py", "py.typed", f"{SHARED}.py", *ROOMS}
    tree = ast.parse((ROOT / "comparisons" / f"{SHARED}.py").read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.split(".")[0] in ("comparisons", *ROOMS) or m.startswith(".") for m in imported), imported


def test_rooms_import_each_other_only_along_the_allowed_arrows():
    import importlib

    for room, module, name in _room_arrows():
        if module == SHARED:
            continue
        target = module.split(".")[0]
        allowed = ALLOWED_ARROWS[room]
        assert module in allowed or target in allowed, f"comparisons.{room} imports comparisons.{module}"
        if module in ROOMS:  # through the room's public surface, its __init__'s __all__
            public = importlib.import_module(f"comparisons.{module}").__all__
            assert name in public, f"comparisons.{room} imports {name!r} from comparisons.{module}, not in its __all__"
        else:
            assert module in allowed, f"comparisons.{room} reaches into comparisons.{module}"


def test_the_arrow_test_sees_arrows():
    # the check above would pass on a parser that finds nothing: the known arrows must be found
    assert ("figures", "bench", "plot") in _room_arrows()
