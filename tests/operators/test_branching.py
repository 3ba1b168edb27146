"""BranchingConv2d: channel split, and at ratio 0 / 1 (no 1x1 mix) exactly its pure branch."""

import pytest
import torch
import torch.nn.functional as F

from operators import BranchingConv1d, BranchingConv2d, ConvNN1d, ConvNN2d

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


# ---- BranchingConv1d: the same layer for sequences (the ConvNN code's Conv1d_Branching) ------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kernel_size", [3, 4, 5])
def test_1d_ratio_zero_is_a_same_conv(kernel_size, dtype):
    layer = BranchingConv1d(3, 4, 0.0, kernel_size=kernel_size, pointwise=False, dtype=dtype)
    assert layer.convnn is None
    x = torch.randn(2, 3, 11, dtype=dtype)
    ref = F.conv1d(x, layer.conv.weight, layer.conv.bias, padding="same")
    torch.testing.assert_close(layer(x), ref, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("similarity", ["cosine", "euclidean", "location", "hybrid"])
def test_1d_ratio_one_is_convnn(similarity, dtype):
    layer = BranchingConv1d(3, 4, 1.0, k=3, similarity=similarity, pointwise=False, dtype=dtype)
    assert layer.conv is None
    pure = ConvNN1d(3, 4, k=3, similarity=similarity, dtype=dtype)
    pure.load_state_dict(layer.convnn.state_dict())
    x = torch.randn(2, 3, 9, dtype=dtype, requires_grad=True)
    out, ref = layer(x), pure(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed, ratio, shape", [(0, 0.5, (2, 3, 10)), (1, 0.25, (1, 3, 7)), (2, 0.75, (3, 3, 12))])
def test_1d_branching_is_convnn_beside_a_same_conv_then_a_pointwise_mix(seed, ratio, shape, dtype):
    """The public code's Conv1d_Branching, written out with torch ops: an independent ConvNN1d for the first
    int(out * ratio) channels, F.conv1d(padding='same') for the rest, concatenated, then a 1x1 F.conv1d."""
    torch.manual_seed(seed)
    layer = BranchingConv1d(3, 6, ratio, kernel_size=3, k=3, dtype=dtype)
    convnn = ConvNN1d(3, layer.nn_channels, k=3, dtype=dtype)
    convnn.load_state_dict(layer.convnn.state_dict())
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    cat = torch.cat([convnn(x), F.conv1d(x, layer.conv.weight, layer.conv.bias, padding="same")], 1)
    ref = F.conv1d(cat, layer.pointwise.weight, layer.pointwise.bias)
    out = layer(x)
    assert out.shape == (shape[0], 6, shape[2])
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=0, atol=TOL[dtype])


def test_1d_registry_entry_and_bad_rank():
    import operators
    layer = operators.create("branching_conv1d", in_channels=4)
    assert isinstance(layer, BranchingConv1d) and layer(torch.randn(2, 4, 9)).shape == (2, 4, 9)
    with pytest.raises(ValueError, match="x"):
        layer(torch.randn(2, 4, 3, 3))
