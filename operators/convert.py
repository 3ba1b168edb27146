"""Exact conversion of a torch convolution into a zoo layer that computes the same function.

``convert(conv, name)`` is for targets that *are* that convolution, mathematically:
``conv1d`` / ``conv2d`` / ``conv3d`` (the same window, ``F.conv`` underneath) and
``conv_nn{1,2,3}d_location`` (ConvNN whose k = (2r+1)^d nearest tokens by position are the
window, with the conv's stride and padding placing the queries; see
:mod:`neighborhoods.query_grid`). Every other target, and any convolution such a target
cannot express (dilation, groups, an even or non-square kernel, a non-zero padding mode,
for ConvNN), is a named error: conversion never approximates.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv import Conv1d, Conv2d
from .convnn import ConvNN1d, ConvNN2d
from .registry import canonical
from .volumetric import Conv3d, ConvNN3d

#: canonical target name -> (torch conv class it converts, spatial axes)
TARGETS: dict[str, tuple[type[nn.Module], int]] = {
    "conv1d": (nn.Conv1d, 1), "conv2d": (nn.Conv2d, 2), "conv3d": (nn.Conv3d, 3),
    "conv_nn1d_location": (nn.Conv1d, 1), "conv_nn2d_location": (nn.Conv2d, 2), "conv_nn3d_location": (nn.Conv3d, 3),
}
_CONV = {1: Conv1d, 2: Conv2d, 3: Conv3d}
_CONVNN = {1: ConvNN1d, 2: ConvNN2d, 3: ConvNN3d}


def convert(conv: nn.Module, name: str) -> nn.Module:
    """A layer registered as ``name`` whose outputs (and gradients) equal ``conv``'s, weights copied.

    Args:
        conv: a ``torch.nn.Conv1d``, ``Conv2d`` or ``Conv3d``.
        name: ``'conv1d'``, ``'conv2d'``, ``'conv3d'`` or ``'conv_nn{1,2,3}d_location'``
            (any registered alias or case).

    The result has ``conv``'s dtype, device and training mode. Raises ``TypeError`` for a
    module that is not a torch convolution and ``ValueError`` naming the target and the
    argument it cannot express.
    """
    if not isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        raise TypeError(f"conv must be a torch.nn.Conv1d, Conv2d or Conv3d, got {type(conv).__name__}")
    target = canonical(name)
    if target not in TARGETS:
        raise ValueError(f"convert: {target!r} is not mathematically a convolution, so no layer of it equals "
                         f"{type(conv).__name__}; exact targets: {', '.join(TARGETS)}")
    kind, dims = TARGETS[target]
    if type(conv) is not kind:
        raise ValueError(f"convert: {target!r} converts a torch.nn.{kind.__name__}, got {type(conv).__name__}")
    factory = {"device": conv.weight.device, "dtype": conv.weight.dtype}
    if target in ("conv1d", "conv2d", "conv3d"):
        layer = _CONV[dims](
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias is not None, conv.padding_mode, **factory)
    else:
        layer = _location_convnn(conv, target, dims, factory)
    with torch.no_grad():
        layer.weight.copy_(conv.weight.reshape(layer.weight.shape))
        if conv.bias is not None:
            layer.bias.copy_(conv.bias)
    return layer.train(conv.training)


def _location_convnn(conv: nn.Conv1d | nn.Conv2d | nn.Conv3d, target: str, dims: int, factory: dict) -> nn.Module:
    """ConvNN with 'location' similarity and the conv's window, stride and padding (checked expressible)."""
    width = conv.kernel_size[0]
    problems = []
    if len(set(conv.kernel_size)) != 1 or width % 2 == 0:
        problems.append(f"kernel_size={conv.kernel_size} (ConvNN's window is (2r+1) wide on every axis)")
    if any(d != 1 for d in conv.dilation):
        problems.append(f"dilation={conv.dilation} (the k nearest positions are a dense window)")
    if conv.groups != 1:
        problems.append(f"groups={conv.groups} (ConvNN's weight mixes every input channel)")
    if conv.padding_mode != "zeros":
        problems.append(f"padding_mode={conv.padding_mode!r} (ConvNN pads with zero tokens)")
    if problems:
        raise ValueError(f"convert: {target!r} cannot express this {type(conv).__name__}: {'; '.join(problems)}")
    cls = _CONVNN[dims]
    radius = (width - 1) // 2
    pads = (radius,) if isinstance(conv.padding, str) else conv.padding
    # the default candidate padding (the window's radius, or the padding where queries reach beyond the
    # image), given explicitly: these are new-style arguments, so no deprecation warning for `padding`
    return cls(conv.in_channels, conv.out_channels, k=width ** dims, similarity="location",
               bias=conv.bias is not None, stride=conv.stride, padding=conv.padding,
               candidate_padding=max(radius, *pads), **factory)
