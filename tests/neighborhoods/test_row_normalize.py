"""DenseAffinity(normalize="row"): A = D^-1 M, and a row summing to exactly 0 gets zero weights.

Issue 19: kernel="dot" divided by a zero row sum (NaN, or inf). The defined behaviour is
``D^+ M`` with the degree matrix's pseudo-inverse, what a fully masked softmax row gets.
"""

import torch

from neighborhoods.selectors import DenseAffinity


def test_rows_are_divided_by_their_sums():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64) + 0.1  # positive features: positive dot scores
    a = DenseAffinity(kernel="dot", normalize="row").affinity(x)
    tokens = x.flatten(2).transpose(1, 2)
    m = tokens @ tokens.transpose(1, 2)
    torch.testing.assert_close(a[:, 0], m / m.sum(-1, keepdim=True), rtol=1e-12, atol=0)


def test_a_row_summing_to_zero_gets_zero_weights():
    # tokens (1, 0) and (-1, 0): every dot row is (1, -1) or (-1, 1), which sums to 0
    x = torch.tensor([[[1.0, -1.0], [0.0, 0.0]]], dtype=torch.float64)  # (B=1, C=2, N=2)
    for kernel in ("dot", "relu", "sigmoid", "exp"):
        a = DenseAffinity(kernel=kernel, normalize="row").affinity(x)
        assert torch.isfinite(a).all(), kernel
    assert torch.equal(DenseAffinity(kernel="dot", normalize="row").affinity(x), torch.zeros(1, 1, 2, 2,
                                                                                            dtype=torch.float64))
    # a relu row of zeros, and a row whose keys are all masked out, as well
    zero = torch.zeros(1, 2, 3, dtype=torch.float64)
    assert torch.equal(DenseAffinity(kernel="relu", normalize="row").affinity(zero), torch.zeros(1, 1, 3, 3,
                                                                                                dtype=torch.float64))
    mask = torch.tensor([[False, False], [True, True]])
    x = torch.randn(1, 2, 2, dtype=torch.float64).abs() + 0.1
    a = DenseAffinity(kernel="exp", normalize="row").affinity(x, mask=mask)
    assert torch.equal(a[0, 0, 0], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(a[0, 0, 1].sum(), torch.tensor(1.0, dtype=torch.float64))


def test_the_zero_row_rule_keeps_gradients_finite():
    x = torch.tensor([[[1.0, -1.0], [0.0, 0.0]]], dtype=torch.float64, requires_grad=True)
    DenseAffinity(kernel="dot", normalize="row").affinity(x).sum().backward()
    assert torch.isfinite(x.grad).all()
