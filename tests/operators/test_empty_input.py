"""An empty input (a zero-size spatial axis, or B = 0) gives an empty output of the right shape.

Issue 9, item 5. Before the fix SNL and Cayley-SNL raised IndexError (a max over no keys),
CGNL ZeroDivisionError, and the non-local, N3 and location-ConvNN blocks torch's convolution
RuntimeError. The expected shape is read off the same layer's output on the non-empty example
input (every registered example keeps the input's grid), with the emptied axis set to 0.
"""

import pytest
import torch

import operators
from neighborhoods import NeighborAggregator
from operators.registry import entry

NAMES = operators.available()


def _build(name):
    e = entry(name)
    torch.manual_seed(0)
    return e.target(**{**e.defaults, **e.example.kwargs}).eval(), e.example.input_shape


def _emptied(name, shape):
    """(input shape with one token axis set to 0, that axis) for every token axis of the layout."""
    axes = [1] if operators.info(name).layout == "(B, N, E)" else list(range(2, len(shape)))
    return [(tuple(0 if i == a else n for i, n in enumerate(shape)), a) for a in axes]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_axis_gives_empty_output_of_the_right_shape(name, dtype):
    layer, shape = _build(name)
    layer = layer.to(dtype)
    full = layer(torch.randn(*shape, dtype=dtype))
    assert full.shape[2:] == shape[2:] or operators.info(name).layout == "(B, N, E)"
    for empty_shape, axis in _emptied(name, shape):
        x = torch.randn(*empty_shape, dtype=dtype, requires_grad=True)
        paths = ("auto", "reference") if isinstance(layer, NeighborAggregator) else ("auto",)
        for path in paths:
            kwargs = {} if path == "auto" else {"path": path}
            y = layer(x, **kwargs)
            expected = list(full.shape)
            expected[axis] = 0
            assert list(y.shape) == expected, (path, empty_shape)
            assert y.dtype == dtype
            y.sum().backward()  # on the graph, as torch ops on empty tensors are
            assert x.grad is not None and x.grad.shape == x.shape
            x.grad = None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_batch_gives_empty_output_of_the_right_shape(name, dtype):
    # issue 19: B = 0 raised inside candidate_sum (N3, criss-cross) and knn (ConvNN): a view(b, -1, ...)
    # cannot infer -1 from zero elements
    layer, shape = _build(name)
    layer = layer.to(dtype)
    full = layer(torch.randn(*shape, dtype=dtype))
    x = torch.randn(0, *shape[1:], dtype=dtype, requires_grad=True)
    paths = ("auto", "reference") if isinstance(layer, NeighborAggregator) else ("auto",)
    for path in paths:
        y = layer(x, **({} if path == "auto" else {"path": path}))
        assert tuple(y.shape) == (0, *full.shape[1:]), path
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape
        x.grad = None


def test_strided_conv_on_an_empty_axis_follows_torchs_size_formula():
    # H_out = floor((H + 2p - d(k-1) - 1) / s) + 1 (torch.nn.Conv2d's docs): 5 -> 3, 0 -> 0
    layer = operators.create("conv2d", in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1)
    assert layer(torch.randn(2, 3, 5, 0)).shape == (2, 4, 3, 0)
    assert layer(torch.randn(2, 3, 0, 7)).shape == (2, 4, 0, 4)


def test_empty_axis_without_same_padding_is_a_named_error():
    valid = operators.create("conv2d", in_channels=3, kernel_size=3, padding=0)
    with pytest.raises(ValueError, match="too small"):  # as for any input smaller than the kernel
        valid(torch.randn(1, 3, 5, 0))
    padded = operators.create("conv2d", in_channels=3, kernel_size=3, padding=2)
    with pytest.raises(ValueError, match="padding alone"):  # windows of pure padding on an empty axis
        padded(torch.randn(1, 3, 5, 0))


def test_small_but_not_empty_images_keep_their_named_errors():
    # k neighbours cannot be chosen among fewer tokens; an empty image asks for none
    with pytest.raises(ValueError, match="k must be <="):
        operators.create("conv_nn2d", in_channels=3, k=9)(torch.randn(1, 3, 2, 2))
    assert operators.create("conv_nn2d", in_channels=3, k=9)(torch.randn(1, 3, 2, 0)).shape == (1, 3, 2, 0)
