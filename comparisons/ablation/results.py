"""The results store: per-run records and checkpoints under ``--out``, written atomically.

Layout of an output folder::

    runs/<run id>/records.jsonl   one JSON record per finished epoch of the run (rewritten whole)
    runs/<run id>/checkpoint.pt   model, optimiser, scheduler and RNG states after the last epoch
    results.jsonl                 every run's records, merged (what reports are drawn from)
    report.md, *.png              the rendered report

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so an interrupted write leaves the previous version, never half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import torch

RESULTS_FILE = "results.jsonl"
RUNS_DIR = "runs"
#: fields that tell two records of the same epoch apart (timings are not among them)
RECORD_KEY = ("task", "backbone", "operator", "seed", "epoch")


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` via a temporary file in its folder and ``os.replace``; no partial file survives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {n} is not a JSON record: {err}") from None
    return records


def config_hash(config: dict[str, Any]) -> str:
    """A short fingerprint of a run's configuration (what must match for a resume)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def run_id(label: str, seed: int) -> str:
    """A folder name for (operator label, seed): the label itself when it is a safe name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")
    if slug != label:
        slug += "-" + hashlib.sha1(label.encode()).hexdigest()[:6]
    return f"{slug}-seed{seed}"


class RunStore:
    """The files of one run (one operator, one seed) under ``out/runs/<run id>/``."""

    def __init__(self, out: Path, run: str) -> None:
        self.folder = Path(out) / RUNS_DIR / run
        self.records_path = self.folder / "records.jsonl"
        self.checkpoint_path = self.folder / "checkpoint.pt"

    def records(self) -> list[dict[str, Any]]:
        return read_jsonl(self.records_path) if self.records_path.exists() else []

    def write_records(self, records: list[dict[str, Any]]) -> None:
        write_jsonl(self.records_path, records)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f))

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, loaded with ``weights_only=True`` (tensors and plain containers only)."""
        if not self.checkpoint_path.exists():
            return None
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)


def collect(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """Every record under ``folders`` (their runs and merged results), deduplicated by :data:`RECORD_KEY`.

    Shards of one sweep run into separate folders (or one shared folder) merge here. The same
    epoch found twice with different numbers is an error: the folders are not one sweep.
    """
    merged: dict[tuple, dict[str, Any]] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"results folder {str(folder)!r} does not exist")
        files = sorted((folder / RUNS_DIR).glob("*/records.jsonl"))
        if (folder / RESULTS_FILE).exists():
            files.append(folder / RESULTS_FILE)
        if not files:
            raise ValueError(f"results folder {str(folder)!r} holds no {RESULTS_FILE} and no {RUNS_DIR}/*/records.jsonl")
        for path in files:
            for record in read_jsonl(path):
                key = tuple(record.get(k) for k in RECORD_KEY)
                old = merged.setdefault(key, record)
                if old is not record and _numbers(old) != _numbers(record):
                    raise ValueError(f"conflicting results for {dict(zip(RECORD_KEY, key))} in {path}: "
                                     f"{_numbers(old)} vs {_numbers(record)}")
    return sorted(merged.values(), key=lambda r: (r.get("task"), r.get("backbone"), r.get("index", 0),
                                                  r.get("operator"), r.get("seed"), r.get("epoch")))


def _numbers(record: dict[str, Any]) -> tuple:
    return record.get("train_loss"), record.get("test_loss"), record.get("value")
