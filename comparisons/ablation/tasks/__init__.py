"""Tasks of ``neighbor-zoo compare``: real data, shipped or already on disk, never downloaded.

``make_task(name, **kwargs)`` builds one; an unknown name lists the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Batch, Task, epoch_generator
from .cifar10 import CIFAR10
from .denoise import Denoise
from .digits import Digits

TASKS: dict[str, Callable[..., Task]] = {"digits": Digits, "cifar10": CIFAR10, "denoise": Denoise}


def make_task(name: str, **kwargs: Any) -> Task:
    """The task registered under ``name`` built with ``kwargs``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choices: {', '.join(TASKS)}")
    return TASKS[name](**kwargs)


__all__ = ["CIFAR10", "TASKS", "Batch", "Denoise", "Digits", "Task", "epoch_generator", "make_task"]
