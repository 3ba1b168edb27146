"""Conv1d / Conv2d through the explicit window neighbourhood equal torch's convolutions.

The grid crosses kernel sizes (1, 3, 5, non-square), paddings (ints, per-axis, 'same',
'valid') and every padding mode; inside each cell stride, dilation, groups (incl. depthwise)
and bias vary. Forward and gradients (input, weight, bias) are compared with torch.nn.Conv*
holding the same state_dict: float64 to 1e-10, float32 to 1e-4.
"""

import itertools

import pytest
import torch

from neighborhoods.functional import PADDING_MODES
from operators import Conv1d, Conv2d

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
# (stride, dilation, groups, bias) with 4 input channels: groups=4 is depthwise
INNER = [(1, 1, 1, True), (2, 1, 2, False), (1, 2, 4, True), (2, 2, 1, True)]


def assert_same_as_torch(ours, theirs, x, dtype):
    theirs.load_state_dict(ours.state_dict())
    x = x.clone().requires_grad_(True)
    out, ref = ours(x, path="reference"), theirs(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    ours_params = [p for p in (ours.weight, ours.bias) if p is not None]
    theirs_params = [p for p in (theirs.weight, theirs.bias) if p is not None]
    g_ours = torch.autograd.grad(out, [x, *ours_params], cot)
    g_theirs = torch.autograd.grad(ref, [x, *theirs_params], cot)
    for a, b in zip(g_ours, g_theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype])
    # and the fast path agrees with both
    torch.testing.assert_close(ours(x, path="fast"), ref, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("padding", [0, 1, (2, 1), "same", "valid"])
@pytest.mark.parametrize("kernel", [1, 3, 5, (2, 3)])
def test_conv2d_reference_equals_torch(kernel, padding, mode):
    dtype = torch.float64
    for stride, dilation, groups, bias in INNER:
        if padding == "same" and stride != 1:
            continue  # torch rejects 'same' with stride > 1 (tested in test_bad_input)
        args = dict(in_channels=4, out_channels=8, kernel_size=kernel, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=bias, padding_mode=mode, dtype=dtype)
        x = torch.randn(2, 4, 11, 12, dtype=dtype)
        assert_same_as_torch(Conv2d(**args), torch.nn.Conv2d(**args), x, dtype)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("padding", [0, 2, "same", "valid"])
@pytest.mark.parametrize("kernel", [1, 3, 4])
def test_conv1d_reference_equals_torch(kernel, padding, mode):
    dtype = torch.float64
    for stride, dilation, groups, bias in INNER:
        if padding == "same" and stride != 1:
            continue
        args = dict(in_channels=4, out_channels=8, kernel_size=kernel, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=bias, padding_mode=mode, dtype=dtype)
        x = torch.randn(3, 4, 13, dtype=dtype)
        assert_same_as_torch(Conv1d(**args), torch.nn.Conv1d(**args), x, dtype)


@pytest.mark.parametrize("kernel, padding, mode, groups", list(itertools.product(
    [3, (1, 4)], [1, "same"], ["zeros", "reflect"], [1, 4])))
def test_conv2d_float32(kernel, padding, mode, groups):
    dtype = torch.float32
    args = dict(in_channels=4, out_channels=8, kernel_size=kernel, padding=padding, groups=groups,
                padding_mode=mode, dtype=dtype)
    assert_same_as_torch(Conv2d(**args), torch.nn.Conv2d(**args), torch.randn(2, 4, 9, 7, dtype=dtype), dtype)


def test_torch_state_dict_loads_unchanged():
    native = torch.nn.Conv2d(3, 5, 3, padding=1)
    ours = Conv2d(3, 5, 3, padding=1)
    ours.load_state_dict(native.state_dict())
    assert set(ours.state_dict()) == {"weight", "bias"}
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(ours(x), native(x))
