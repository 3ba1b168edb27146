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
        data_dir: the task's data folder, where it has one.
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
    layers: tuple[LayerFactory, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(spec.resolve(self.backbone) for spec in self.operators))

    def make_task(self) -> Task:
        return _cached_task(self.task, tuple(sorted(self.all_task_options().items())))

    def all_task_options(self) -> dict[str, Any]:
        return {**self.recipe.task_options.get(self.task, {}), **self.task_options}

    def runs(self) -> list[Run]:
        """Operator-major, then seed: the order runs are trained and tabulated in."""
        return [Run(self, index, spec, seed) for index, spec in enumerate(self.operators) for seed in self.seeds]

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

    def config(self) -> dict[str, Any]:
        """What makes two runs the same run (saved with the checkpoint; a resume must match it)."""
        s = self.sweep
        return {"task": s.task, "task_options": s.all_task_options(), "backbone": s.backbone,
                "backbone_options": s.backbone_options, "operator": self.spec.to_json(),
                "recipe": s.recipe.to_json(), "epochs": s.epochs, "seed": self.seed}

    def fingerprint(self) -> str:
        return config_hash(self.config())
