"""BranchingConv2d: channel split, and at ratio 0 / 1 (no 1x1 mix) exactly its pure branch."""

import pytest
import torch
import torch.nn.functional as F

from operators import BranchingConv2d, ConvNN2d

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kernel_size", [3, 5, (2, 3)])
def test_ratio_zero_is_a_same_conv(kernel_size, dtype):
    layer = BranchingConv2d(3, 4, 0.0, kernel_size=kernel_size, pointwise=False, dtype=dtype)
    assert layer.convnn is None
    x = torch.randn(2, 3, 6, 7, dtype=dtype)
    ref = F.conv2d(x, layer.conv.weight, layer.conv.bias, padding="same")
    torch.testing.assert_close(layer(x), ref, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("similarity", ["cosine", "euclidean", "location", "hybrid"])
def test_ratio_one_is_convnn(similarity, dtype):
    layer = BranchingConv2d(3, 4, 1.0, k=9, similarity=similarity, pointwise=False, dtype=dtype)
    assert layer.conv is None
    pure = ConvNN2d(3, 4, k=9, similarity=similarity, dtype=dtype)
    pure.load_state_dict(layer.convnn.state_dict())
    x = torch.randn(2, 3, 5, 6, dtype=dtype, requires_grad=True)
    out, ref = layer(x), pure(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("ratio, nn_channels", [(0.25, 1), (0.5, 3), (0.9, 5), (0.1, 0)])
def test_channel_split(ratio, nn_channels):
    layer = BranchingConv2d(3, 6, ratio, pointwise=False)
    assert layer.nn_channels == nn_channels
    if nn_channels:
        assert layer.convnn.out_channels == nn_channels
    assert layer.conv.out_channels == 6 - nn_channels
    x = torch.randn(1, 3, 5, 5)
    y = layer(x)
    assert y.shape == (1, 6, 5, 5)
    if nn_channels:  # ConvNN channels first, then the conv's
        torch.testing.assert_close(y[:, :nn_channels], layer.convnn(x))
    torch.testing.assert_close(y[:, nn_channels:], layer.conv(x))


def test_pointwise_mixes_the_concatenation():
    layer = BranchingConv2d(3, 6, 0.5)
    x = torch.randn(2, 3, 5, 5)
    cat = torch.cat([layer.convnn(x), layer.conv(x)], 1)
    ref = F.conv2d(cat, layer.pointwise.weight, layer.pointwise.bias)
    torch.testing.assert_close(layer(x), ref)
