"""functional.window_index reads exactly the taps F.unfold reads."""

import pytest
import torch
import torch.nn.functional as F

from neighborhoods.functional import gather, window_index


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    ((3, 3), (1, 1), (1, 1), (1, 1)), ((2, 3), (2, 1), (0, 2), (1, 2)), ((1, 1), (1, 1), (0, 0), (1, 1)),
    ((5, 3), (1, 2), (2, 1), (2, 1)),
])
def test_window_index_equals_unfold(kernel, stride, padding, dilation):
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    index, valid, out_shape = window_index((8, 9), kernel, stride, tuple((p, p) for p in padding), dilation)
    tokens = x.flatten(2).transpose(1, 2)  # (b, n, c)
    ours = gather(tokens, index, valid)  # (b, q, taps, c)
    cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # (b, c * taps, q)
    ref = cols.view(2, 3, -1, cols.shape[-1]).permute(0, 3, 2, 1)
    assert ref.shape[1] == out_shape[0] * out_shape[1]
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
