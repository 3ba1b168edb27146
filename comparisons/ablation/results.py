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

from .record import RunRecord

RESULTS_FILE = "results.jsonl"
RUNS_DIR = "runs"


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


def read_records(path: Path, dropped: list[str] | None = None) -> list[RunRecord]:
    """The records of a ``.jsonl`` file; ``ValueError`` naming the file and line of a bad one.

    Every record is written with its newline, so text after the last newline that is not
    JSON is the tail of an interrupted write (a file copied or appended to by other means, a
    full disk): the complete records before it are kept, and one line saying what was
    dropped goes to ``dropped``. A bad line anywhere else, or a cut one when ``dropped`` is
    None (the caller cannot report it), is a ``ValueError``.
    """
    lines = path.read_text().split("\n")
    records = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(RunRecord.from_json(json.loads(line)))
            except json.JSONDecodeError as err:
                if n < len(lines) or dropped is None:  # a complete line that is not JSON, or no one to tell
                    raise ValueError(f"{path} line {n} is not a JSON record: {err}") from None
                dropped.append(f"{path}: dropped line {n}, a record cut mid-write ({len(line)} characters, "
                               f"no newline); kept the {len(records)} complete records before it")
            except ValueError as err:
                raise ValueError(f"{path} line {n}: {err}") from None
    return records


def write_records(path: Path, records: Iterable[RunRecord]) -> None:
    write_jsonl(path, (r.to_json() for r in records))


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

    def records(self) -> list[RunRecord]:
        return read_records(self.records_path) if self.records_path.exists() else []

    def write_records(self, records: list[RunRecord]) -> None:
        write_records(self.records_path, records)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.checkpoint_path, lambda f: torch.save(state, f))

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, loaded with ``weights_only=True`` (tensors and plain containers only)."""
        if not self.checkpoint_path.exists():
            return None
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)


def collect(folders: Iterable[Path], dropped: list[str] | None = None) -> list[RunRecord]:
    """Every record under ``folders`` (their runs and merged results), deduplicated by :attr:`RunRecord.KEY`.

    A file's last line cut mid-write is skipped and reported in ``dropped`` (:func:`read_records`).

    Shards of one sweep run into separate folders (or one shared folder) merge here. The same
    epoch found twice with different numbers is an error: the folders are not one sweep.
    """
    merged: dict[tuple, RunRecord] = {}
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
            for record in read_records(path, dropped):
                old = merged.setdefault(record.key, record)
                if old is not record and old.numbers != record.numbers:
                    raise ValueError(f"conflicting results for {dict(zip(RunRecord.KEY, record.key))} in {path}: "
                                     f"{old.numbers} vs {record.numbers}")
    return sorted(merged.values(), key=lambda r: (r.task, r.backbone, r.index, r.operator, r.seed, r.epoch))
