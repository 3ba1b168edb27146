"""softmax_last / log_softmax_last equal torch's last-axis softmaxes, values and gradients.

The short-axis route reduces over a transposed copy (another summation order than the
last-axis kernel), so values agree to round-off: float32 atol 1e-6, float64 1e-14.
"""

import pytest
import torch

from neighborhoods.functional.softmax import SHORT_AXIS, log_softmax_last, softmax_last

TOL = {torch.float32: dict(atol=1e-6, rtol=1e-5), torch.float64: dict(atol=1e-14, rtol=1e-12)}
SHAPES = [(7, 3), (2, 5, 8), (3, 4, 6, 15), (4, 16), (2, 3, 40), (9, 1)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ours, theirs", [(softmax_last, torch.softmax), (log_softmax_last, torch.log_softmax)])
def test_matches_torch_values_and_gradients(ours, theirs, shape, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(shape, generator=g, dtype=dtype)).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    weight = torch.randn(shape, generator=g, dtype=dtype)
    y, y_ref = ours(x), theirs(x_ref, -1)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, **TOL[dtype])
    (y * weight).sum().backward()
    (y_ref * weight).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, **TOL[dtype])


def test_masked_entries_and_empty_rows_behave_as_torch():
    # -inf entries weigh 0; a row of only -inf is NaN in both (callers mask such rows themselves)
    x = torch.tensor([[0.5, float("-inf"), 2.0], [float("-inf")] * 3, [1.0, 1.0, 1.0]])
    torch.testing.assert_close(softmax_last(x), torch.softmax(x, -1), equal_nan=True)
    torch.testing.assert_close(log_softmax_last(x), torch.log_softmax(x, -1), equal_nan=True)


def test_short_route_is_taken_below_the_threshold_only():
    # the route itself is observable in the output's strides: a transposed view of a contiguous result
    short = softmax_last(torch.randn(5, 4, SHORT_AXIS - 1))
    long = softmax_last(torch.randn(5, 4, SHORT_AXIS))
    assert not short.is_contiguous() and long.is_contiguous()
