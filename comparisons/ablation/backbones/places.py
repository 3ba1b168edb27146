"""Where a backbone takes the chosen operator, and how it gets there: :func:`operators.swap`.

The backbones are plain torch networks: at each place where an ablation puts its operator
there is a 3x3 ``nn.Conv2d`` that keeps the map's size, listed in the backbone's ``places``
(qualified module name -> :class:`Place`). :func:`install` replaces exactly those
convolutions with :func:`operators.swap`, the one way the zoo puts an operator into any
network, and checks on a probe batch that the operator fits every place: an operator that
cannot be built there, or maps a place's input to another shape, is an
:class:`OperatorDoesNotFit` naming the operator, the backbone and the place.

The parameters are drawn in the order the network is made, as if each operator had been
built at its place during construction: the plain network is made with its random draws
discarded, then walked in module order (the order its layers were made in); each place is
swapped when the walk reaches it and every other layer is re-initialised by its own
``reset_parameters()``. So a seed gives the same network, parameter for parameter, whether
the operator is built inside the backbone or swapped in after (the saved ``compare`` runs
were made the first way); ``tests/comparisons/ablation/test_compare_backbones.py`` checks
that the walk redraws a plain backbone exactly as its constructor drew it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from operators.swap import SwapEntry, SwapReport, describe_conv, swap

if TYPE_CHECKING:
    from ..specs import LayerFactory


@dataclass(frozen=True)
class Place:
    """One place of a backbone: its name in error messages (``'conv2'``) and the map's ``(H, W)`` there."""

    label: str
    size: tuple[int, ...]


class OperatorDoesNotFit(ValueError):
    """The operator cannot be built for, or run at, a place of a backbone."""


def _does_not_fit(factory: LayerFactory, backbone: str, place: Place, conv: nn.Module, why: str) -> OperatorDoesNotFit:
    size = ", ".join(map(str, place.size))
    return OperatorDoesNotFit(f"operator {factory.label!r} does not fit backbone {backbone!r} at {place.label} "
                              f"(B, {conv.in_channels}, {size}) -> (B, {conv.out_channels}, {size}): {why}")


def install(make: Callable[[], nn.Module], factory: LayerFactory, probe_shape: tuple[int, ...]) -> nn.Module:
    """The network ``make()`` returns with ``factory``'s layer swapped in at its ``places``, checked on zeros.

    ``make`` builds the plain backbone (a module with ``name`` and ``places``). Its own draws
    from the global RNG are discarded and the network is redrawn in construction order, each
    place swapped when reached (module docstring). The probe, ``zeros(probe_shape)``, runs in
    eval mode without gradients; it draws from the global RNG where an operator samples.
    The model's ``swap_report`` says what was replaced (the places) and what was kept.
    """
    with torch.random.fork_rng(devices=[]):
        model = make()
    places: dict[str, Place] = model.places
    backbone: str = model.name
    report = SwapReport(factory.label)
    convs: dict[str, nn.Module] = {}
    for qualified, module in list(model.named_modules()):
        if qualified in places:
            convs[qualified] = module
            try:
                part = swap(model, factory, where=lambda q, m, target=qualified: q == target)
            except (ValueError, TypeError) as err:
                why = err.__cause__ if isinstance(err.__cause__, (ValueError, TypeError)) else err
                raise _does_not_fit(factory, backbone, places[qualified], module,
                                    f"building it for {module.in_channels} -> {module.out_channels} channels "
                                    f"failed: {why}") from err
            report.replaced += part.replaced
        elif not any(qualified.startswith(f"{p}.") for p in places) and list(module.parameters(recurse=False)):
            reset = getattr(module, "reset_parameters", None)
            if reset is None:
                raise TypeError(f"{backbone}: {qualified or 'the model'} ({type(module).__name__}) holds parameters "
                                f"but has no reset_parameters() to draw them in construction order")
            reset()
    report.skipped += [SwapEntry(q, describe_conv(m), f"not an operator place of {backbone}")
                       for q, m in model.named_modules() if isinstance(m, nn.Conv2d) and q not in places]
    model.swap_report = report
    _probe(model, factory, backbone, places, convs, probe_shape)
    return model


def _probe(model: nn.Module, factory: LayerFactory, backbone: str, places: dict[str, Place],
           convs: dict[str, nn.Module], shape: tuple[int, ...]) -> None:
    """Run ``zeros(shape)`` through ``model``; an error or a wrong shape at a place names the place."""
    at: list[str | None] = [None]

    def enter(qualified: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            at[0] = qualified
        return hook

    def leave(qualified: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], y: Tensor) -> None:
            x, conv = args[0], convs[qualified]
            expected = (x.shape[0], conv.out_channels, *x.shape[2:])
            if tuple(y.shape) != expected:
                raise _does_not_fit(factory, backbone, places[qualified], conv,
                                    f"it maps {tuple(x.shape)} to {tuple(y.shape)}")
            at[0] = None
        return hook

    handles = []
    for qualified in places:
        layer = model.get_submodule(qualified)
        handles += [layer.register_forward_pre_hook(enter(qualified)), layer.register_forward_hook(leave(qualified))]
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    except (ValueError, TypeError, RuntimeError, IndexError) as err:
        if isinstance(err, OperatorDoesNotFit) or at[0] is None:
            raise
        raise _does_not_fit(factory, backbone, places[at[0]], convs[at[0]], f"{type(err).__name__}: {err}") from err
    finally:
        for handle in handles:
            handle.remove()
    model.train()
