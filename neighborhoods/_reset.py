"""Re-initialising composite modules."""

from __future__ import annotations

from torch import nn


def reset_submodules(module: nn.Module) -> None:
    """Call ``reset_parameters`` on every descendant of ``module`` that has one (depth first).

    Containers such as ``nn.Sequential`` have no ``reset_parameters`` of their own; walking
    all descendants reaches the layers inside them.
    """
    for m in module.modules():
        if m is not module and callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()
