"""What a model costs: parameters, forward FLOPs per image, and the width that matches a parameter budget.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one image in eval mode:
it counts the matrix products and convolutions torch dispatches (2 FLOPs per multiply-add),
not elementwise work, sorting, top-k or gathers, so for k-NN operators the figure is a lower
bound on the arithmetic and says nothing about memory traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: how close ``--match params`` must bring a model's parameter count to the baseline's
MATCH_TOLERANCE = 0.05


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, image_shape: tuple[int, ...]) -> int:
    """FLOPs of ``model``'s forward pass on one zero image of ``image_shape`` ``(C, H, W)``, in eval mode.

    The model's train/eval mode and the global RNG (a sampling operator draws from it) are
    restored afterwards.
    """
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            counter = FlopCounterMode(display=False)
            with counter:
                model(torch.zeros(1, *image_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class WidthMatch:
    """The width chosen for a parameter budget: its parameter count and whether it is within tolerance."""

    width: int
    parameters: int
    target: int
    within: bool

    @property
    def relative_error(self) -> float:
        return self.parameters / self.target - 1.0


def match_width(parameters_at: Callable[[int], int | None], target: int, start: int, max_width: int | None = None,
                tolerance: float = MATCH_TOLERANCE) -> WidthMatch:
    """The width whose parameter count is closest to ``target``.

    ``parameters_at(width)`` builds the model at that width and counts its parameters (``None``
    where the width does not build, e.g. not a multiple of the heads). Counts grow with width,
    so the search walks from ``start`` towards the target until it passes it (at most to
    ``max_width``, default ``8 * start``) and keeps the closest width seen; ``within`` says
    whether that one is within ``tolerance`` of the target.
    """
    if target < 1:
        raise ValueError(f"target must be a parameter count >= 1, got {target}")
    if start < 1:
        raise ValueError(f"start must be a width >= 1, got {start}")
    max_width = max_width or 8 * start
    seen: dict[int, int] = {}

    def count(width: int) -> int | None:
        if width not in seen:
            n = parameters_at(width)
            if n is None:
                return None
            seen[width] = n
        return seen[width]

    first = count(start)
    step = 1 if first is None or first < target else -1
    width = start
    while 1 <= width + step <= max_width:
        width += step
        n = count(width)
        if n is not None and (n >= target if step == 1 else n <= target):
            break
    if not seen:
        raise ValueError(f"no width between 1 and {max_width} builds")
    best = min(seen, key=lambda w: (abs(seen[w] - target), w))
    return WidthMatch(best, seen[best], target, abs(seen[best] / target - 1.0) <= tolerance)
