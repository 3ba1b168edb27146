"""operators.convert: a zoo layer equal to a torch convolution where the target is one (issue 18 item 3)."""

import itertools

import pytest
import torch
from torch import nn

import operators

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
CASES_2D = [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=3, stride=2, padding=1),
            dict(kernel_size=3, stride=2, padding=0), dict(kernel_size=5, stride=3, padding=2),
            dict(kernel_size=3, stride=1, padding=0, bias=False), dict(kernel_size=3, stride=(1, 2), padding=(2, 1)),
            dict(kernel_size=3, padding="same"), dict(kernel_size=1, stride=2)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("target", ["conv2d", "conv_nn2d_location"])
@pytest.mark.parametrize("case", range(len(CASES_2D)))
def test_converted_2d_layer_equals_the_conv_outputs_and_gradients(target, case, dtype):
    torch.manual_seed(case)
    conv = nn.Conv2d(3, 4, dtype=dtype, **CASES_2D[case])
    layer = operators.convert(conv, target)
    assert layer.weight.dtype == dtype and not layer.weight is conv.weight
    for shape in [(2, 3, 9, 8), (1, 3, 6, 11)]:
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        x2 = x.detach().clone().requires_grad_(True)
        ours, theirs = layer(x), conv(x2)
        torch.testing.assert_close(ours, theirs, **TOL[dtype])
        g = torch.randn_like(ours)
        ours.backward(g)
        theirs.backward(g)
        torch.testing.assert_close(x.grad, x2.grad, **TOL[dtype])
    torch.testing.assert_close(layer.weight.grad.reshape(conv.weight.shape), conv.weight.grad, **TOL[dtype])


@pytest.mark.parametrize("target", ["conv1d", "conv_nn1d_location"])
def test_converted_1d_layer_equals_the_conv(target):
    for k, s, p in itertools.product((3, 5), (1, 2), (0, 1, 3)):
        torch.manual_seed(k + s + p)
        conv = nn.Conv1d(3, 4, k, stride=s, padding=p, dtype=torch.float64)
        x = torch.randn(2, 3, 13, dtype=torch.float64)
        torch.testing.assert_close(operators.convert(conv, target)(x), conv(x), **TOL[torch.float64])


def test_alias_names_are_accepted():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    assert isinstance(operators.convert(conv, "convnn2d_location"), operators.ConvNN2d)
    assert isinstance(operators.convert(conv, "Conv2d"), operators.Conv2d)


@pytest.mark.parametrize("conv, target, words", [
    (nn.Conv2d(4, 4, 3, dilation=2), "conv_nn2d_location", ["dilation"]),
    (nn.Conv2d(4, 4, 3, groups=2), "conv_nn2d_location", ["groups=2"]),
    (nn.Conv2d(4, 4, (3, 5)), "conv_nn2d_location", ["kernel_size"]),
    (nn.Conv2d(4, 4, 2), "conv_nn2d_location", ["kernel_size"]),
    (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "conv_nn2d_location", ["padding_mode"]),
    (nn.Conv2d(4, 4, 3), "conv_nn2d", ["'conv_nn2d'", "not mathematically a convolution"]),
    (nn.Conv2d(4, 4, 3), "self_attention2d", ["not mathematically"]),
    (nn.Conv2d(4, 4, 3), "conv1d", ["Conv1d"]),
    (nn.Conv1d(4, 4, 3), "conv_nn2d_location", ["Conv2d"]),
])
def test_what_a_target_cannot_express_is_a_named_error(conv, target, words):
    with pytest.raises(ValueError) as err:
        operators.convert(conv, target)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_not_a_conv_is_a_type_error():
    with pytest.raises(TypeError, match="conv must be"):
        operators.convert(nn.Linear(3, 3), "conv2d")
