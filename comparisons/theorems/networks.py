"""Network theorems: a whole network converted layer by layer equals the original.

The project's ResNet-18 (torchvision's modules, names and shapes:
:mod:`comparisons.ablation.backbones.resnet`) with every 3x3 convolution, the strided ones
included, converted by :func:`operators.convert` to ``conv_nn2d_location`` (ConvNN with
position similarity, queries on each conv's output grid) computes the same function: in
eval mode (BatchNorm running statistics randomised, so they are not the identity), the
logits and the input's gradient agree to float64 round-off. The converted network runs on
both paths: ``fast`` (each layer's ``F.conv2d`` twin, the same kernel as the original, so
the error is 0 by construction) and ``reference`` (every layer selects its k nearest
positions, gathers them and applies one weight matrix per slot: the claim with content).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from neighborhoods import use_path

import operators

from .base import Trial, describe, max_error, randn, theorem


def _randomise_batch_norm(model: nn.Module, generator: torch.Generator) -> None:
    """Running statistics and affine parameters away from their identity start, drawn from ``generator``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=generator, dtype=m.running_mean.dtype))
                m.running_var.copy_(torch.rand(n, generator=generator, dtype=m.running_var.dtype) + 0.5)
                m.weight.copy_(torch.rand(n, generator=generator, dtype=m.weight.dtype) + 0.5)
                m.bias.copy_(0.1 * torch.randn(n, generator=generator, dtype=m.bias.dtype))


@theorem("resnet18.conv_nn2d_location==resnet18",
         "The project's ResNet-18 with every 3x3 conv (strided ones included) converted to conv_nn2d_location "
         "equals the original in eval mode", float64=1e-12,
         # float32: the outputs agree to round-off (~1e-6), but ReLU and max-pool route the gradient by
         # comparisons that the reference path's other summation order can flip at a near-tie, and a
         # flipped unit moves the input's gradient by far more than round-off (seeds 0-49 on a 2-core
         # Xeon: median 4e-7, worst 2.3e-3 with a forward error of 8e-7); float64 at 1e-12 carries the claim
         float32=1e-2)
def resnet18_converted(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    # imported here: the backbones live in the ablation room (which the theorems room may use, for this)
    from comparisons.ablation.backbones import resnet18

    for classes, shape in ((10, (2, 3, 64, 64)), (7, (1, 3, 45, 38))):
        original = resnet18(num_classes=classes).to(dtype)
        _randomise_batch_norm(original, generator)
        original.eval()
        converted = copy.deepcopy(original)
        report = operators.swap(converted, "conv_nn2d_location", copy_weights=True)
        x = randn(generator, *shape, dtype=dtype)
        strided = sum("s2" in e.module for e in report.replaced)
        for path in ("reference", "fast"):
            def ours() -> Tensor:
                with use_path(path):
                    return converted(x)

            err = max_error(ours, lambda: original(x), [x], generator)
            yield Trial(describe(x=x.shape, replaced=len(report.replaced), strided=strided, path=path), err)
