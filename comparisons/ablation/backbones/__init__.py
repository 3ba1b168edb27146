"""Backbones with a pluggable operator: VGG-11 and a small ViT for classification, DnCNN for denoising.

Also the networks users swap operators into, with torchvision's module names and shapes:
:func:`resnet18`, :func:`vgg11` and a MobileNet-style :func:`mobilenet_like` (see
:func:`operators.swap`).

``build_backbone(name, factory, task, **options)`` builds one for a task and checks, on a probe
batch, that the operator fits every place it is put (a named error otherwise). A backbone gets
the operator as a :class:`~comparisons.ablation.specs.LayerFactory`, already resolved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..tasks import Task
from .dncnn import DnCNN
from .resnet import BasicBlock, InvertedResidual, ResNet, mobilenet_like, resnet18
from .slot import OperatorDoesNotFit, OperatorSlot
from .vgg import VGG, TorchvisionVGG, vgg11
from .vit import ViT

if TYPE_CHECKING:
    from ..specs import LayerFactory

BACKBONES = {"vgg": VGG, "vit": ViT, "dncnn": DnCNN}
#: the backbone each kind of task uses unless told otherwise
DEFAULT_BACKBONE = {"classification": "vgg", "denoising": "dncnn"}


def build_backbone(name: str, factory: LayerFactory, task: Task, **options: Any) -> nn.Module:
    """``name``'s network for ``task`` with ``factory``'s layer at its operator places, checked on a probe batch.

    The probe runs in eval mode without gradients, so it changes no statistics; it does draw
    from the global RNG where an operator samples (fixed by the caller's seed).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choices: {', '.join(BACKBONES)}")
    cls = BACKBONES[name]
    if (task.kind == "denoising") != (cls is DnCNN):
        raise ValueError(f"backbone {name!r} does not suit task {task.name!r} ({task.kind}); "
                         f"use {DEFAULT_BACKBONE[task.kind]!r}")
    try:
        model = (cls(factory, task.in_channels, task.image_size, **options) if cls is DnCNN
                 else cls(factory, task.in_channels, task.num_classes, task.image_size, **options))
    except TypeError as err:  # an unknown backbone option
        raise ValueError(f"backbone {name!r}: {err}") from None
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, task.in_channels, *task.image_size))
    model.train()
    return model


__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "BasicBlock", "DnCNN", "InvertedResidual", "OperatorDoesNotFit",
           "OperatorSlot", "ResNet", "TorchvisionVGG", "VGG", "ViT", "build_backbone", "mobilenet_like", "resnet18",
           "vgg11"]
