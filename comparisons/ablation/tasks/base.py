"""What a comparison trains on: a task is tensors, a loss and a metric, nothing else.

Axis legend: ``B`` batch, ``C`` image channels, ``H, W`` image size.

Every source of randomness in a task is a ``torch.Generator`` seeded from ``(seed, epoch)``,
never the global RNG, so an epoch's batches are the same whether a run is fresh or resumed
from a checkpoint, and the same on every DDP rank.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = ("classification", "denoising")


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A generator for one (seed, epoch, stream): independent of everything that ran before."""
    return torch.Generator().manual_seed(1_000_003 * seed + 7_919 * epoch + stream)


@dataclass(frozen=True)
class Batch:
    """Inputs ``x`` ``(B, C, H, W)`` and targets ``y``: labels ``(B,)`` or clean images ``(B, C, H, W)``."""

    x: Tensor
    y: Tensor


class Task(ABC):
    """A dataset with a fixed train/test split, a loss and a test metric.

    Subclasses set ``name``, ``kind`` (one of :data:`KINDS`), ``metric`` (the name of the
    test metric, higher is better), ``in_channels``, ``image_size`` and ``num_classes``
    (``None`` for denoising) and give the batches of each epoch and of the test set.
    """

    name: str
    kind: str
    metric: str
    in_channels: int
    image_size: tuple[int, int]
    num_classes: int | None = None

    @abstractmethod
    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[Batch]:
        """The training batches of one epoch, in an order fixed by ``(seed, epoch)``."""

    @abstractmethod
    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        """The test set, always the same batches."""

    @abstractmethod
    def train_size(self) -> int:
        """Samples per training epoch."""

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Cross entropy for classification, mean squared error for denoising (mean over the batch)."""
        if self.kind == "classification":
            return F.cross_entropy(output, target)
        return F.mse_loss(output, target)

    def score(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-sample metric contributions ``(B,)`` whose mean is :meth:`finish`'s input."""
        if self.kind == "classification":
            return (output.argmax(1) == target).double()
        return ((output.clamp(0, 1) - target) ** 2).flatten(1).mean(1).double()

    def finish(self, mean_score: float) -> float:
        """Accuracy in percent, or PSNR in dB of the mean squared error (images in [0, 1])."""
        if self.kind == "classification":
            return 100.0 * mean_score
        return 10.0 * math.log10(1.0 / max(mean_score, 1e-20))

    def describe(self) -> str:
        """One line for reports."""
        return f"{self.name}: {self.kind}, {self.train_size()} training samples per epoch, metric {self.metric}"


class TensorTask(Task):
    """A classification task held as tensors: ``x`` ``(N, C, H, W)`` float, ``y`` ``(N,)`` int64."""

    kind = "classification"
    metric = "accuracy"

    def __init__(self, train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor) -> None:
        self.train_x, self.train_y, self.test_x, self.test_y = train_x, train_y, test_x, test_y
        self.in_channels = train_x.shape[1]
        self.image_size = (train_x.shape[2], train_x.shape[3])

    def train_size(self) -> int:
        return self.train_x.shape[0]

    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[Batch]:
        order = torch.randperm(self.train_size(), generator=epoch_generator(seed, epoch))
        for start in range(0, len(order), batch_size):
            take = order[start:start + batch_size]
            yield Batch(self.train_x[take], self.train_y[take])

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.test_x.shape[0], batch_size):
            yield Batch(self.test_x[start:start + batch_size], self.test_y[start:start + batch_size])
