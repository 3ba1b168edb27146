"""Strided queries (issue 18 item 2): queries on a convolution's output grid, keys on the whole input.

The theorem: location ConvNN with stride s and padding p *is* ``Conv{1,2}d(kernel 2r+1,
stride=s, padding=p)`` with the weight reshaped, outputs and gradients, on both paths. For
every other layer, the strided output is the unstrided one read at the query positions
(queries choose among the same keys either way), an independent computation.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import operators
from neighborhoods.query_grid import QueryGrid

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
CONV = {1: F.conv1d, 2: F.conv2d}


def _location_layer(d, width, stride, padding, dtype, seed):
    torch.manual_seed(seed)
    cls = operators.ConvNN1d if d == 1 else operators.ConvNN2d
    return cls(3, 4, k=width ** d, similarity="location", stride=stride, padding=padding).to(dtype)


@pytest.mark.filterwarnings("ignore:ConvNN's padding=0 is now:DeprecationWarning")  # stride 1, padding 0: meant
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("path", ["reference", "auto"])
def test_location_convnn_with_stride_and_padding_is_a_strided_conv(d, dtype, path):
    shapes = {1: [(2, 3, 11), (1, 3, 8)], 2: [(2, 3, 9, 8), (1, 3, 7, 10)]}[d]
    for (width, stride, padding), shape in itertools.product(
            [(3, 1, 0), (3, 2, 1), (3, 2, 0), (3, 3, 2), (5, 2, 2), (5, 3, 1), (3, 2, 3)], shapes):
        layer = _location_layer(d, width, stride, padding, dtype, seed=stride + padding)
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        x2 = x.detach().clone().requires_grad_(True)
        kernel = layer.weight.detach().clone().reshape(4, 3, *(width,) * d).requires_grad_(True)
        ours = layer(x, path=path)
        theirs = CONV[d](x2, kernel, layer.bias, stride=stride, padding=padding)
        assert ours.shape == theirs.shape, (width, stride, padding, shape)
        torch.testing.assert_close(ours, theirs, **TOL[dtype])
        upstream = torch.randn_like(ours)
        ours.backward(upstream)
        theirs.backward(upstream)
        torch.testing.assert_close(x.grad, x2.grad, **TOL[dtype])
        torch.testing.assert_close(layer.weight.grad.reshape(kernel.shape), kernel.grad, **TOL[dtype])


def _pair(make, stride):
    torch.manual_seed(1)
    full = make(1).double().eval()
    torch.manual_seed(1)
    strided = make(stride).double().eval()
    strided.load_state_dict(full.state_dict())
    return full, strided


MAKERS = {
    "conv_nn2d": lambda s: operators.ConvNN2d(4, 5, stride=s),
    "conv_nn2d_euclidean": lambda s: operators.ConvNN2d(4, 5, similarity="euclidean", stride=s),
    "conv_nn2d_hybrid": lambda s: operators.ConvNN2d(4, 5, similarity="hybrid", stride=s),
    "conv_nn2d_random": lambda s: operators.ConvNN2d(4, 5, sampling="random", samples=20, seed=3, stride=s),
    "conv_nn2d_spatial": lambda s: operators.ConvNN2d(4, 5, sampling="spatial", samples=4, stride=s),
    "conv_nn1d": lambda s: operators.ConvNN1d(4, 5, k=3, stride=s),
    "self_attention2d": lambda s: operators.SelfAttention2d(4, 2, stride=s),
    "non_local_block2d": lambda s: operators.NonLocalBlock2d(4, stride=s),
    "non_local_block2d_concatenation": lambda s: operators.NonLocalBlock2d(4, mode="concatenation", out_channels=6,
                                                                           stride=s),
    "non_local_block1d": lambda s: operators.NonLocalBlock1d(4, stride=s, sub_sample=False),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("path", ["reference", "auto"])
def test_strided_output_is_the_full_output_at_the_query_positions(name, stride, path):
    full, strided = _pair(MAKERS[name], stride)
    shape = (2, 4, 11) if name.endswith("1d") else (2, 4, 9, 8)
    x = torch.randn(shape, dtype=torch.float64)
    expected = full(x, path=path)[(..., *[slice(None, None, stride)] * (len(shape) - 2))]
    out = strided(x, path=path)
    assert out.shape[2:] == tuple((n - 1) // stride + 1 for n in shape[2:])  # a 3x3 conv with padding 1
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    out.square().sum().backward()  # gradients flow through the strided layer
    assert all(p.grad is not None for p in strided.parameters() if p.requires_grad)


def test_convnn_output_size_is_the_convolution_formula():
    x = torch.randn(1, 3, 10, 7)
    for stride, padding in [(1, 0), (2, 0), (2, 1), (2, 2), (3, 1), (4, 3)]:
        layer = operators.ConvNN2d(3, 4, stride=stride, padding=padding, candidate_padding=3)
        conv = torch.nn.Conv2d(3, 4, 3, stride=stride, padding=padding)
        assert layer(x).shape == conv(x).shape, (stride, padding)


def test_token_layers_reject_a_padding_that_puts_queries_outside_the_image():
    for make in (lambda: operators.SelfAttention2d(4, stride=2, padding=1),
                 lambda: operators.NonLocalBlock2d(4, stride=2, padding=1)):
        with pytest.raises(ValueError, match="padding must be 0 or None"):
            make()


def test_padding_same_needs_stride_one_and_bad_padding_is_named():
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        operators.ConvNN2d(3, 4, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        operators.ConvNN2d(3, 4, stride=2, padding="full")
    with pytest.raises(ValueError, match="stride"):
        operators.ConvNN2d(3, 4, stride=0)


def test_input_too_small_for_the_stride_is_a_named_error():
    layer = operators.ConvNN2d(3, 4, stride=2, padding=0)
    with pytest.raises(ValueError, match="too small"):
        layer(torch.randn(1, 3, 2, 5))


def test_query_grid_of_a_3x3_conv():
    grid = QueryGrid.of_conv(2, stride=2, padding=1, radius=1)
    assert grid.offset == (0, 0) and grid.shape((7, 8)) == (4, 4)
    assert QueryGrid.of_conv(2, 2, 0, radius=1).offset == (1, 1)
