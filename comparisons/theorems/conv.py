"""Convolution is a fixed-window neighbour aggregation."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from operators import Conv1d, Conv2d

from .base import Trial, describe, max_error, randn, theorem

# (kernel, stride, padding, dilation, groups, padding_mode) covering the conv zoo's corners:
# pointwise, non-square, strided, 'same' with an even kernel, 'valid', depthwise, every mode
CONV2D_CASES = [
    (3, 1, 1, 1, 1, "zeros"), ((1, 1), 1, 0, 1, 1, "zeros"), ((5, 3), 2, (2, 1), 1, 2, "reflect"),
    (3, 1, "same", 2, 4, "replicate"), ((2, 4), 1, "same", 1, 1, "circular"), (3, 2, "valid", 1, 4, "zeros"),
]
CONV1D_CASES = [(3, 1, 1, 1, 1, "zeros"), (5, 2, 2, 2, 2, "reflect"), (4, 1, "same", 1, 4, "circular")]
TORCH_CONV = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d}


def _conv_trials(layer_cls: type, cases: list, spatial: tuple[int, ...], generator: torch.Generator,
                 dtype: torch.dtype, against: str) -> Iterator[Trial]:
    """Our conv vs torch's (``against='torch'``) or our fast path vs our reference path."""
    for kernel, stride, padding, dilation, groups, mode in cases:
        args = (4, 8, kernel, stride, padding, dilation, groups)
        layer = layer_cls(*args, padding_mode=mode, dtype=dtype)
        x = randn(generator, 2, 4, *spatial, dtype=dtype)
        if against == "torch":
            native = TORCH_CONV[len(spatial)](*args, padding_mode=mode, dtype=dtype)
            native.load_state_dict(layer.state_dict())
            ours, theirs = (lambda: layer(x, path="reference")), (lambda: native(x))
            # the two layers hold distinct parameter tensors: their grads are compared pairwise
            err = max_error(ours, theirs, [x], generator, a_params=[layer.weight, layer.bias],
                            b_params=[native.weight, native.bias])
        else:
            wrt = [x, layer.weight, layer.bias]
            err = max_error(lambda: layer(x, path="fast"), lambda: layer(x, path="reference"), wrt, generator)
        yield Trial(describe(x=x.shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                             groups=groups, mode=mode), err)


@theorem("conv2d.reference==torch", "Conv2d through the explicit window neighbourhood equals torch.nn.Conv2d")
def conv2d_reference(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    yield from _conv_trials(Conv2d, CONV2D_CASES, (9, 10), generator, dtype, "torch")


@theorem("conv1d.reference==torch", "Conv1d through the explicit window neighbourhood equals torch.nn.Conv1d")
def conv1d_reference(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    yield from _conv_trials(Conv1d, CONV1D_CASES, (13,), generator, dtype, "torch")


@theorem("conv2d.fast==reference", "Conv2d's F.conv2d fast path equals its reference path")
def conv2d_fast(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    yield from _conv_trials(Conv2d, CONV2D_CASES, (9, 10), generator, dtype, "fast")
