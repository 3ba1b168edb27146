"""One epoch of one run, as ``compare`` saves it: :class:`RunRecord`, one JSON line on disk.

The on-disk form is a flat JSON object (``results.jsonl`` and ``runs/<run>/records.jsonl``),
unchanged from the untyped records of earlier versions, so old results folders load as they
are. Reading is tolerant in one direction only:

* a key this version does not know (written by a newer version, or added by hand) is kept in
  :attr:`RunRecord.extra` and written back unchanged by :meth:`RunRecord.to_json`, so merging
  or re-rendering a folder never drops data;
* a key this version needs and the line lacks is an error naming the key.

To add a field: give it a default here (so older files still load) and it is saved from then on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class RunRecord:
    """What one epoch of one run measured.

    Attributes:
        task, backbone: the sweep's task and backbone names.
        operator: the operator's label (a table row); ``index`` its place in the sweep's order.
        spec: what the label built, e.g. ``convnn2d(k=9)``.
        seed, epoch, epochs: the run's seed, this epoch (1-based) and the run's planned epochs.
        train_loss: mean training loss of the epoch over all ranks' samples.
        test_loss, metric, value: the test set's loss and its metric (``accuracy`` in %,
            ``psnr`` in dB) after the epoch.
        seconds: wall-clock seconds of the epoch's training.
        peak_memory_mb: peak memory of one training step (see the report's note on how).
        parameters: the model's parameter count.
        recipe, device, world_size: how it trained.
        fingerprint: the hash of the run's configuration (a resume must match it).
        extra: keys of the JSON line this version does not know, kept for writing back.
    """

    task: str
    backbone: str
    operator: str
    seed: int
    epoch: int
    epochs: int
    train_loss: float
    test_loss: float
    metric: str
    value: float
    seconds: float
    peak_memory_mb: float
    parameters: int
    index: int = 0
    spec: str | None = None
    recipe: str | None = None
    device: str | None = None
    world_size: int = 1
    fingerprint: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    #: the fields that tell two records of the same epoch apart (timings are not among them)
    KEY: ClassVar[tuple[str, ...]] = ("task", "backbone", "operator", "seed", "epoch")

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.KEY)

    @property
    def numbers(self) -> tuple[float, float, float]:
        """What two copies of the same epoch must agree on: ``(train_loss, test_loss, value)``."""
        return self.train_loss, self.test_loss, self.value

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object saved on disk (``extra``'s keys included, ``None`` fields left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None}
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_json`; ``ValueError`` naming the first missing required key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a record must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        missing = [f.name for f in dataclasses.fields(cls) if f.name in names and f.name not in data
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"record lacks the key(s) {', '.join(missing)}")
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})
