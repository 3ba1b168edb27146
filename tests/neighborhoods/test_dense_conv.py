"""A convolution of a tiny map as one dense product (dense_conv.py) against torch's own convolution.

Two independent computations: ``dense_conv2d`` (the weight times a static tap table, then one
matrix product) and ``nn.Conv2d``'s forward (oneDNN or torch's native kernel), on random inputs:
kernel sizes, strides, paddings, dilations, rectangular maps, with and without bias, values and
the gradients of the input, weight and bias: float64 to 1e-12, float32 to 1e-5 of the largest
entry; gradcheck in float64. Then the route's refusals, and an N3 block with the route on and off.
"""

import pytest
import torch
from torch import nn

import neighborhoods.selectors.shared_stem as shared_stem
from neighborhoods.functional.dense_conv import DENSE_CONV_ELEMENTS, dense_conv2d, dense_conv_takes
from operators import N3Block2d

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}

CASES = [  # (C_in, C_out, map, kernel, stride, padding, dilation)
    (8, 8, (4, 4), 3, 1, 1, 1),
    (8, 1, (4, 4), 3, 1, 1, 1),
    (3, 5, (5, 7), 3, 2, 1, 1),
    (2, 3, (6, 5), (1, 3), 1, (0, 1), 1),
    (2, 3, (7, 7), 3, 1, 2, 2),
    (5, 4, (3, 3), 1, 1, 0, 1),
    (2, 2, (4, 6), 5, (1, 2), 2, 1),
]


def close(a, b, dtype):
    torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype] * max(1.0, b.abs().max().item()))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_route_equals_torch_conv2d(case, bias, dtype, seed):
    cin, cout, spatial, kernel, stride, padding, dilation = case
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias).to(dtype)
    x = torch.randn(3, cin, *spatial, dtype=dtype, requires_grad=True)
    assert dense_conv_takes(conv, x)
    got = dense_conv2d(conv, x)
    want = conv(x)
    assert got.shape == want.shape
    close(got, want, dtype)
    up = torch.randn_like(want)
    params = [x, conv.weight] + ([conv.bias] if bias else [])
    for a, b in zip(torch.autograd.grad(got, params, up), torch.autograd.grad(want, params, up)):
        close(a, b, dtype)


def test_gradcheck():
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: dense_conv2d(conv, x), (x, conv.weight, conv.bias))
    assert torch.autograd.gradgradcheck(lambda x, w, b: dense_conv2d(conv, x), (x, conv.weight, conv.bias))


def test_the_route_refuses_what_it_does_not_compute():
    x = torch.randn(2, 8, 4, 4)
    assert dense_conv_takes(nn.Conv2d(8, 8, 3, padding=1), x)
    assert not dense_conv_takes(nn.Conv2d(8, 8, 3, padding=1, groups=2), x)
    assert not dense_conv_takes(nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), x)
    assert not dense_conv_takes(nn.Conv2d(8, 8, 3, padding="same"), x)
    assert not dense_conv_takes(nn.Conv2d(8, 8, 3, padding=1).double(), x)  # dtypes differ
    assert not dense_conv_takes(nn.Conv2d(4, 8, 3, padding=1), x)  # channels differ: torch raises its own error
    assert not dense_conv_takes(nn.Conv2d(8, 8, 5), x)  # no output pixel
    assert not dense_conv_takes(nn.Conv2d(8, 8, 3, padding=1), torch.randn(2, 8, 32, 32))  # too large
    assert 8 * 16 * 8 * 16 <= DENSE_CONV_ELEMENTS < 64 * 16 * 64 * 16

    class Sub(nn.Conv2d):
        pass

    assert not dense_conv_takes(Sub(8, 8, 3, padding=1), x)
    hooked = nn.Conv2d(8, 8, 3, padding=1)
    hooked.register_forward_hook(lambda *args: None)
    assert not dense_conv_takes(hooked, x)
    plain = nn.Conv2d(8, 8, 3, padding=1)
    taken = []
    torch.func.vmap(lambda v: taken.append(dense_conv_takes(plain, v[None])) or v)(x)
    assert taken == [False]  # traced calls keep torch's convolution


def _block_run(dtype, dense, monkeypatch):
    """Output and gradients of the digits ablation's N3 block, the dense route on or off."""
    torch.manual_seed(0)
    block = N3Block2d(8, out_channels=16, k=3, patch_size=2, patch_stride=1, window=4, embed_channels=8,
                      hidden_channels=8, depth=2).double()
    x = torch.randn(4, 8, 4, 4, dtype=torch.float64)
    up = torch.randn(4, 16, 4, 4, dtype=torch.float64)
    block, x, up = block.to(dtype), x.to(dtype).requires_grad_(), up.to(dtype)
    calls = []
    with monkeypatch.context() as m:
        m.setattr(shared_stem, "dense_conv2d", lambda *args: calls.append(1) or dense_conv2d(*args))
        if not dense:
            m.setattr(shared_stem, "dense_conv_takes", lambda *args: False)
        out = block(x)
    assert len(calls) == (2 if dense else 0)  # the second convolutions of the embedding and temperature networks
    return [out.detach(), *torch.autograd.grad(out, [x, *block.parameters()], up)]


def test_n3_block_with_and_without_the_dense_route(monkeypatch):
    for a, b in zip(_block_run(torch.float64, True, monkeypatch), _block_run(torch.float64, False, monkeypatch)):
        close(a, b, torch.float64)
    # float32: the block amplifies round-off (batch norm over 64 numbers, a softmax at a learned
    # temperature) about 1e4-fold; both float32 routes are measured against float64, and the
    # dense one may not be worse than 4x oneDNN's error (or 1e-5 of the scale)
    truth = _block_run(torch.float64, False, monkeypatch)
    dense = _block_run(torch.float32, True, monkeypatch)
    onednn = _block_run(torch.float32, False, monkeypatch)
    for a, b, ref in zip(dense, onednn, truth):
        scale = max(1.0, ref.abs().max().item())
        err_dense, err_onednn = (a.double() - ref).abs().max().item(), (b.double() - ref).abs().max().item()
        assert err_dense <= 4 * max(err_onednn, TOL[torch.float32] * scale), (err_dense, err_onednn)
