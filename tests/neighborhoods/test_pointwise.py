"""ChannelLinear, the one 1x1 projection: equal to torch's 1x1 convolution, grouped or not."""

import pytest
import torch

from neighborhoods import ChannelLinear


@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("shape", [(2, 8, 5), (2, 8, 3, 4)])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_channel_linear_is_a_1x1_convolution(groups, shape, dtype, tol):
    g = torch.Generator().manual_seed(groups)
    lin = ChannelLinear(8, 12, groups=groups, dtype=dtype)
    assert lin.weight.shape == (12, 8 // groups)
    conv = (torch.nn.Conv1d if len(shape) == 3 else torch.nn.Conv2d)(8, 12, 1, groups=groups, dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(lin.weight.view(conv.weight.shape))
        conv.bias.copy_(lin.bias)
    x = torch.randn(*shape, generator=g, dtype=dtype, requires_grad=True)
    y, ref = lin(x), conv(x)
    torch.testing.assert_close(y, ref, rtol=0, atol=tol)
    gy = torch.randn(y.shape, generator=g, dtype=dtype)
    torch.testing.assert_close(torch.autograd.grad(y, x, gy)[0], torch.autograd.grad(ref, x, gy)[0], rtol=0, atol=tol)


def test_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="in_features must be divisible by groups, got in_features=6, groups=4"):
        ChannelLinear(6, 8, groups=4)
    with pytest.raises(ValueError, match="out_features must be divisible by groups"):
        ChannelLinear(8, 6, groups=4)
    assert "groups=2" in repr(ChannelLinear(4, 4, groups=2))


@pytest.mark.parametrize("shape", [(3, 6, 8, 8), (2, 6, 100), (2, 6, 4, 4, 4), (1, 6, 9, 8)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_sample_products_equal_the_channels_last_linear(shape, bias, dtype, tol, seed, monkeypatch):
    # at >= BATCHED_MIN_POSITIONS positions the map is one product per sample; F.linear over
    # channels-last rows (the small-input route) is the independent computation it must equal
    import neighborhoods.pointwise as pointwise
    torch.manual_seed(seed)
    layer = ChannelLinear(6, 5, bias=bias, dtype=dtype)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    assert x.shape[2:].numel() >= pointwise.BATCHED_MIN_POSITIONS
    up = torch.randn(shape[0], 5, *shape[2:], dtype=dtype)
    y = layer(x)
    grads = torch.autograd.grad(y, [x, *layer.parameters()], up)
    monkeypatch.setattr(pointwise, "BATCHED_MIN_POSITIONS", 10 ** 9)
    y_ref = layer(x)
    grads_ref = torch.autograd.grad(y_ref, [x, *layer.parameters()], up)
    torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
    assert y.is_contiguous()
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol * max(1.0, g_ref.abs().max().item()))
