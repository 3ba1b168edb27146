"""A sweep: which runs (operator x seed) a ``compare`` command makes, and how they split into shards.

Making a :class:`Sweep` resolves each operator spec, once, into the layer factory its runs
build their backbones from (:meth:`~comparisons.ablation.specs.OperatorSpec.resolve`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .recipes import Recipe
from .results import config_hash, run_id
from .specs import LayerFactory, OperatorSpec
from .tasks import Task, make_task


@dataclass(frozen=True)
class Sweep:
    """Everything a ``compare`` command trains.

    Attributes:
        task, task_options: the task's name and constructor arguments.
        backbone, backbone_options: the backbone's name and constructor arguments.
        operators: the operators, in table order (data: saved with every run's configuration).
        layers: each operator resolved for ``backbone``, in the same order (made here, not given).
        recipe: how each run trains.
        epochs: epochs per run.
        seeds: the seeds each operator runs with.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
        operator_options: per operator label, backbone options that override ``backbone_options``
            for that operator's runs (``--match params`` sets each operator's width here).
        operator_notes: per operator label, a note for the report (how its width was matched).
        baseline: the label every other operator is compared with.
    """

    task: str
    backbone: str
    operators: tuple[OperatorSpec, ...]
    recipe: Recipe
    epochs: int
    seeds: tuple[int, ...]
    task_options: dict[str, Any] = field(default_factory=dict)
    backbone_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    operator_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    operator_notes: dict[str, str] = field(default_factory=dict)
    baseline: str | None = None
    layers: tuple[LayerFactory, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(spec.resolve(self.backbone) for spec in self.operators))

    def make_task(self) -> Task:
        return _cached_task(self.task, tuple(sorted(self.all_task_options().items())))

    def all_task_options(self) -> dict[str, Any]:
        return {**self.recipe.task_options.get(self.task, {}), **self.task_options}

    def runs(self) -> list[Run]:
        """Operator-major, then seed: the order runs are tabulated and sharded in (trained: :meth:`training_order`)."""
        return [Run(self, index, spec, seed) for index, spec in enumerate(self.operators) for seed in self.seeds]

    @staticmethod
    def training_order(runs: list[Run]) -> list[Run]:
        """``runs`` seed-major: every operator's first seed, then every operator's second, ...

        The report compares operators' seconds per epoch; trained operator-major, a drift of the
        machine's speed during the sweep (2-core cloud machines drift by tens of percent over
        minutes) lands on whichever operator runs then. Interleaved, it lands on all alike.
        """
        position = {seed: i for i, seed in enumerate(dict.fromkeys(run.seed for run in runs))}
        return sorted(runs, key=lambda run: (position[run.seed], run.index))

    def shard(self, index: int, count: int) -> list[Run]:
        """Runs ``index, index + count, ...`` of :meth:`runs` (0-based ``index < count``)."""
        return self.runs()[index::count]


@functools.lru_cache(maxsize=4)
def _cached_task(name: str, options: tuple) -> Task:
    return make_task(name, **dict(options))


@dataclass(frozen=True)
class Run:
    """One operator trained with one seed."""

    sweep: Sweep
    index: int
    spec: OperatorSpec
    seed: int

    @property
    def layer(self) -> LayerFactory:
        """The operator, resolved: what this run's backbone is built from."""
        return self.sweep.layers[self.index]

    @property
    def id(self) -> str:
        return run_id(self.spec.label, self.seed)

    @property
    def backbone_options(self) -> dict[str, Any]:
        """The sweep's backbone options with this operator's own on top."""
        return {**self.sweep.backbone_options, **self.sweep.operator_options.get(self.spec.label, {})}

    def config(self) -> dict[str, Any]:
        """What makes two runs the same run (saved with the checkpoint; a resume must match it)."""
        s = self.sweep
        return {"task": s.task, "task_options": s.all_task_options(), "backbone": s.backbone,
                "backbone_options": self.backbone_options, "operator": self.spec.to_json(),
                "recipe": s.recipe.to_json(), "epochs": s.epochs, "seed": self.seed}

    def fingerprint(self) -> str:
        return config_hash(self.config())
