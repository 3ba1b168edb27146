"""Train and evaluate one run, resumably, on one process or under ``torchrun`` (DistributedDataParallel).

Determinism: the model is built after ``torch.manual_seed(seed)``; batches and noise come
from generators seeded by ``(seed, epoch)`` (:mod:`comparisons.ablation.tasks`); the checkpoint after
every epoch holds the model, optimiser, scheduler, the global RNG and every module-owned
``torch.Generator`` (e.g. a sampling selector's). So a run resumed from epoch e computes the
same numbers, on CPU, as one that never stopped.

DDP: every rank builds the same model, takes its share ``batch[rank::world]`` of each batch
(the gradient all-reduce averages them back to the batch's mean gradient), and rank 0 alone
writes records and checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .backbones import build_backbone
from .recipes import count_parameters
from .record import RunRecord
from .results import RunStore
from .sweep import Run
from .tasks import Batch, Task

EpochCallback = Callable[[RunRecord], None]


@dataclass(frozen=True)
class Dist:
    """This process's place in a DDP job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def current() -> Dist:
        if dist.is_available() and dist.is_initialized():
            return Dist(dist.get_rank(), dist.get_world_size())
        return Dist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()


@dataclass(frozen=True)
class Built:
    """A run's model as :func:`build_model` made it, and the global RNG state right after."""

    model: nn.Module
    rng_state: torch.Tensor


def build_model(run: Run) -> Built:
    """``run``'s backbone with its operator, built after ``torch.manual_seed(run.seed)`` (checked on a probe batch).

    ``compare``'s pre-flight check calls this for the first seed of every operator and hands
    the result to :func:`train_run`, which then continues from the same RNG state as if it had
    built the model itself; so a model is built once, and the numbers do not depend on who built it.
    """
    sweep = run.sweep
    torch.manual_seed(run.seed)
    model = build_backbone(sweep.backbone, run.layer, sweep.make_task(), **sweep.backbone_options)
    return Built(model, torch.get_rng_state())


class RunMismatch(ValueError):
    """A checkpoint in ``--out`` belongs to a differently configured run."""


def generator_states(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state of every ``torch.Generator`` a submodule owns (as its ``generator`` attribute)."""
    return {name: m.generator.get_state() for name, m in model.named_modules()
            if isinstance(getattr(m, "generator", None), torch.Generator)}


def set_generator_states(model: nn.Module, states: dict[str, torch.Tensor]) -> None:
    modules = dict(model.named_modules())
    for name, state in states.items():
        modules[name].generator.set_state(state)


@contextmanager
def saved_tensor_bytes(box: list[int]) -> Iterator[None]:
    """Count the bytes autograd saves for backward (distinct storages) into ``box[0]``."""
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            box[0] += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Parameters, their gradients and the optimiser's state tensors, in bytes."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    opt = sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
              if isinstance(v, torch.Tensor))
    return 2 * params + opt


def _shard(batch: Batch, d: Dist, device: torch.device) -> Batch:
    if d.world > 1:
        batch = Batch(batch.x[d.rank::d.world], batch.y[d.rank::d.world])
    return Batch(batch.x.to(device), batch.y.to(device))


def train_epoch(model: nn.Module, task: Task, optimizer: torch.optim.Optimizer, seed: int, epoch: int,
                batch_size: int, device: torch.device, d: Dist) -> tuple[float, int]:
    """One epoch; returns (mean training loss over all ranks' samples, peak bytes of the first step)."""
    model.train()
    total, count, peak = 0.0, 0, 0
    for step, batch in enumerate(task.train_batches(seed, epoch, batch_size)):
        if batch.x.shape[0] < d.world:  # too small to give every rank a sample: all ranks skip it
            continue
        batch = _shard(batch, d, device)
        box = [0]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with saved_tensor_bytes(box) if step == 0 and device.type != "cuda" else _nothing():
            loss = task.loss(model(batch.x), batch.y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 0:
            peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                    else box[0] + state_bytes(model, optimizer))
        total += loss.item() * batch.x.shape[0]
        count += batch.x.shape[0]
    total, count = d.sum(total, count)
    return total / max(count, 1), peak


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, batch_size: int, device: torch.device) -> tuple[float, float]:
    """(test loss, test metric) over the whole test set."""
    model.eval()
    loss_sum, score_sum, n = 0.0, 0.0, 0
    for batch in task.test_batches(batch_size):
        x, y = batch.x.to(device), batch.y.to(device)
        out = model(x)
        loss_sum += task.loss(out, y).item() * x.shape[0]
        score_sum += task.score(out, y).sum().item()
        n += x.shape[0]
    return loss_sum / n, task.finish(score_sum / n)


def train_run(run: Run, store: RunStore, device: torch.device, on_epoch: EpochCallback | None = None,
              on_start: Callable[[int, int], None] | None = None, built: Built | None = None) -> list[RunRecord]:
    """Train ``run`` to its last epoch, resuming from ``store``'s checkpoint; returns its records.

    ``built`` is the run's model from :func:`build_model` if it was built already (it is
    then trained in place); without it the model is built here. ``on_start(first_epoch, epochs)``
    is called once before training, ``on_epoch(record)`` after each epoch's record and
    checkpoint are saved (progress bars, tests).
    """
    sweep, d = run.sweep, Dist.current()
    task, recipe = sweep.make_task(), sweep.recipe
    built = built if built is not None else build_model(run)
    model = built.model
    torch.set_rng_state(built.rng_state)
    parameters = count_parameters(model)
    model.to(device)
    optimizer = recipe.make_optimizer(model.parameters())
    scheduler = recipe.make_scheduler(optimizer, sweep.epochs)
    records: list[RunRecord] = []
    checkpoint = store.load_checkpoint()
    if checkpoint is not None:
        if checkpoint["fingerprint"] != run.fingerprint():
            raise RunMismatch(f"{store.checkpoint_path} belongs to a run configured differently from "
                              f"{run.spec.label!r} seed {run.seed} now (other epochs, recipe, task or backbone "
                              f"options); use another --out or delete {store.folder}")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"])
        set_generator_states(model, checkpoint["generators"])
        records = store.records()[: checkpoint["epoch"]]
    first = len(records) + 1
    if on_start is not None:
        on_start(first, sweep.epochs)
    net = model
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    batch_size = recipe.batch_size
    for epoch in range(first, sweep.epochs + 1):
        start = time.perf_counter()
        train_loss, peak = train_epoch(net, task, optimizer, run.seed, epoch, batch_size, device, d)
        seconds = time.perf_counter() - start
        scheduler.step()
        test_loss, value = evaluate(model, task, batch_size, device)
        records.append(RunRecord(
            task=sweep.task, backbone=sweep.backbone, operator=run.spec.label, spec=run.layer.description,
            index=run.index, seed=run.seed, epoch=epoch, epochs=sweep.epochs, train_loss=train_loss,
            test_loss=test_loss, metric=task.metric, value=value, seconds=seconds, peak_memory_mb=peak / 2**20,
            parameters=parameters, recipe=recipe.name, device=str(device), world_size=d.world,
            fingerprint=run.fingerprint()))
        if d.main:
            store.write_records(records)
            store.save_checkpoint({
                "fingerprint": run.fingerprint(), "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(), "generators": generator_states(model)})
        d.barrier()
        if on_epoch is not None:
            on_epoch(records[-1])
    return records


def is_finished(run: Run, store: RunStore) -> bool:
    """Whether ``store`` holds every epoch of ``run`` (with its configuration)."""
    records = store.records()
    return (len(records) == run.sweep.epochs and all(r.fingerprint == run.fingerprint() for r in records)
            and store.checkpoint_path.exists())
