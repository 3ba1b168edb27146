"""A finished (or stopped) ``compare`` run, rebuilt from its folder: the model untrained and trained.

``compare`` saves every run under ``OUT/runs/<run id>/``: ``records.jsonl`` (each epoch's
record, with the run's whole configuration) and ``checkpoint.pt`` (the model's state_dict
after the last finished epoch, with the configuration's fingerprint). :func:`load_run` builds
the model as training built it (:func:`.train.build_model`: the same seed, so the same
initial weights) twice, and loads the saved weights into the second. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .recipes import Recipe
from .record import RunRecord
from .results import read_records
from .specs import OperatorSpec
from .sweep import Run, Sweep
from .train import build_model


@dataclass(frozen=True)
class LoadedRun:
    """One run folder, rebuilt.

    Attributes:
        run: the run (its sweep holds the task, backbone, recipe).
        untrained: the model as ``compare`` built it before training (eval mode).
        trained: the same model with the checkpoint's weights (eval mode).
        record: the last saved record.
        epoch: the epoch the checkpoint was saved after.
    """

    run: Run
    untrained: nn.Module
    trained: nn.Module
    record: RunRecord
    epoch: int


def load_run(run_dir: Path) -> LoadedRun:
    """Rebuild ``OUT/runs/RUN_ID``; ValueError naming what is missing or inconsistent."""
    run_dir = Path(run_dir)
    records_path, checkpoint_path = run_dir / "records.jsonl", run_dir / "checkpoint.pt"
    missing = [p.name for p in (records_path, checkpoint_path) if not p.is_file()]
    if missing:
        raise ValueError(f"run_dir must be a run folder of `neighbor-zoo compare` (OUT/runs/RUN_ID, holding "
                         f"records.jsonl and checkpoint.pt), got {str(run_dir)!r}: no {' or '.join(missing)}")
    records = read_records(records_path)
    if not records:
        raise ValueError(f"run_dir {str(run_dir)!r}: records.jsonl holds no finished epoch")
    last = records[-1]
    c = last.config
    spec = OperatorSpec(**c["operator"])
    sweep = Sweep(task=c["task"], backbone=c["backbone"], operators=(spec,), recipe=Recipe(**c["recipe"]),
                  epochs=c["epochs"], seeds=(c["seed"],), task_options=dict(c["task_options"]),
                  backbone_options=dict(c["backbone_options"]))
    run = Run(sweep, 0, spec, c["seed"])
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != run.fingerprint():
        raise ValueError(f"run_dir {str(run_dir)!r}: the configuration in records.jsonl does not rebuild the "
                         f"checkpointed run (fingerprint {run.fingerprint()} != {state.get('fingerprint')})")
    untrained = build_model(run).model.eval()
    trained = build_model(run).model
    trained.load_state_dict(state["model"])
    return LoadedRun(run, untrained, trained.eval(), last, int(state["epoch"]))
