"""Re-initialising composite modules."""

from __future__ import annotations

from torch import nn

from .lifting import lent_modules, lifted_names


def reset_submodules(module: nn.Module) -> None:
    """Re-initialise every part of ``module``: each child that has ``reset_parameters`` resets itself.

    A child that knows how to reset owns its whole subtree (so a part's own rule, such as a
    residual filter starting at zero, is applied last and not undone by a later reset of a
    module inside it); containers without ``reset_parameters`` (``nn.Sequential``) are
    walked into. A submodule a part lent the layer (:func:`~neighborhoods.lifting.lift`) is
    reset with that part, not as a child of the layer.
    """
    held = lifted_names(module)  # a part re-initialises what it lent the layer (neighborhoods.lifting)
    children = [child for name, child in module.named_children() if name not in held] + lent_modules(module)
    for child in children:
        if callable(getattr(child, "reset_parameters", None)):
            child.reset_parameters()
        else:
            reset_submodules(child)
