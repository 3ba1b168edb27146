"""Backbones with a pluggable operator: VGG-11 and a small ViT for classification, DnCNN for denoising.

Also the networks users swap operators into, with torchvision's module names and shapes:
:func:`resnet18`, :func:`vgg11` and a MobileNet-style :func:`mobilenet_like` (see
:func:`operators.swap`).

``build_backbone(name, factory, task, **options)`` builds one for a task: the backbone as a
plain torch network (a 3x3 ``nn.Conv2d`` at each of its ``places``), the operator (a
:class:`~comparisons.ablation.specs.LayerFactory`, already resolved) put in with
:func:`operators.swap` (:mod:`.places`), and a probe batch that checks it fits every place (a
named error otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..tasks import Task
from .dncnn import DnCNN
from .resnet import BasicBlock, InvertedResidual, ResNet, mobilenet_like, resnet18
from .places import OperatorDoesNotFit, Place, install
from .vgg import VGG, TorchvisionVGG, vgg11
from .vit import ViT

if TYPE_CHECKING:
    from ..specs import LayerFactory

BACKBONES = {"vgg": VGG, "vit": ViT, "dncnn": DnCNN}
#: the backbone each kind of task uses unless told otherwise
DEFAULT_BACKBONE = {"classification": "vgg", "denoising": "dncnn"}


def build_backbone(name: str, factory: LayerFactory, task: Task, **options: Any) -> nn.Module:
    """``name``'s network for ``task`` with ``factory``'s layer swapped in at its places, checked on a probe batch.

    The parameters are drawn in construction order (:mod:`.places`). The probe runs in eval
    mode without gradients, so it changes no statistics; it does draw from the global RNG
    where an operator samples (fixed by the caller's seed). ``model.swap_report`` lists the
    places replaced.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choices: {', '.join(BACKBONES)}")
    cls = BACKBONES[name]
    if (task.kind == "denoising") != (cls is DnCNN):
        raise ValueError(f"backbone {name!r} does not suit task {task.name!r} ({task.kind}); "
                         f"use {DEFAULT_BACKBONE[task.kind]!r}")
    def make() -> nn.Module:
        try:
            return (cls(task.in_channels, task.image_size, **options) if cls is DnCNN
                    else cls(task.in_channels, task.num_classes, task.image_size, **options))
        except TypeError as err:  # an unknown backbone option
            raise ValueError(f"backbone {name!r}: {err}") from None

    return install(make, factory, (2, task.in_channels, *task.image_size))


__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "BasicBlock", "DnCNN", "InvertedResidual", "OperatorDoesNotFit",
           "Place", "ResNet", "TorchvisionVGG", "VGG", "ViT", "build_backbone", "mobilenet_like", "resnet18",
           "vgg11"]
