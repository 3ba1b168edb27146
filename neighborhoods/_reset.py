"""Re-initialising composite modules."""

from __future__ import annotations

from torch import nn


def reset_submodules(module: nn.Module) -> None:
    """Re-initialise every part of ``module``: each child that has ``reset_parameters`` resets itself.

    A child that knows how to reset owns its whole subtree (so a part's own rule, such as a
    residual filter starting at zero, is applied last and not undone by a later reset of a
    module inside it); containers without ``reset_parameters`` (``nn.Sequential``) are
    walked into.
    """
    for child in module.children():
        if callable(getattr(child, "reset_parameters", None)):
            child.reset_parameters()
        else:
            reset_submodules(child)
