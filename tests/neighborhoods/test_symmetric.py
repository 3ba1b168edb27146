"""The symmetric normalisation D^-1/2 (M + M^T)/2 D^-1/2 stays finite and exact for widely spread scores.

Issue 9, item 3: SNL, gSNL, Cayley SNL and ``DenseAffinity(normalize="symmetric")`` returned
NaN for ordinary float32 inputs (a degree underflowed to 0). The reference below is the
formula written out naively in float64, where scores in [-500, 500] neither overflow nor
underflow; the float32 results are compared against it.
"""

import pytest
import torch

import operators
from neighborhoods.functional.symmetric import symmetric_normalize
from neighborhoods.selectors import DenseAffinity


def naive(scores, kernel, mask=None):
    """The formula as printed, in float64: no shift, no logs."""
    m = {"exp": torch.exp, "sigmoid": torch.sigmoid, "dot": lambda s: s, "relu": torch.relu}[kernel](scores)
    if mask is not None:
        m = m.masked_fill(~mask, 0.0)
    m = (m + m.transpose(-1, -2)) / 2
    d = m.sum(-1).rsqrt()
    return d.unsqueeze(-1) * m * d.unsqueeze(-2)


def spread_scores(seed, shape=(2, 3, 9, 9), span=1000.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5) * span


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kernel", ["exp", "sigmoid"])
def test_float32_scores_spanning_1e3(kernel, seed):
    s32 = spread_scores(seed).float()
    reference = naive(s32.double(), kernel)  # the same float32 scores, evaluated exactly enough
    assert torch.isfinite(reference).all()
    got = symmetric_normalize(s32, kernel)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=1e-6)
    if kernel == "exp":  # what the normalisation did before: exp(s - max s) empties rows, 0 * inf = NaN
        m = torch.exp(s32 - s32.amax((-1, -2), keepdim=True))
        m = (m + m.transpose(-1, -2)) / 2
        assert (m.sum(-1) == 0).any()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kernel", ["exp", "sigmoid", "dot", "relu"])
def test_float64_matches_formula(kernel, seed):
    s = spread_scores(seed, span=6.0)
    if kernel == "dot":
        s = s.abs()  # positive degrees: the formula's square root is real
    mask = torch.rand(s.shape, generator=torch.Generator().manual_seed(seed)) > 0.3
    mask |= torch.eye(s.shape[-1], dtype=torch.bool)  # every node keeps an edge
    for m in (None, mask):
        torch.testing.assert_close(symmetric_normalize(s, kernel, m), naive(s, kernel, m), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kernel", ["exp", "sigmoid", "dot", "relu"])
def test_zero_degree_has_zero_weight_and_finite_gradient(kernel):
    s = spread_scores(0, shape=(1, 5, 5), span=4.0).abs().requires_grad_(True)
    mask = torch.ones(1, 5, 5, dtype=torch.bool)
    mask[:, 2, :] = False
    mask[:, :, 2] = False  # node 2 has no edge at all
    a = symmetric_normalize(s, kernel, mask)
    assert torch.isfinite(a).all()
    assert (a[:, 2, :] == 0).all() and (a[:, :, 2] == 0).all()
    keep = torch.tensor([0, 1, 3, 4])
    torch.testing.assert_close(a[:, keep][:, :, keep], naive(s.detach()[:, keep][:, :, keep], kernel),
                               rtol=1e-12, atol=1e-14)
    a.sum().backward()
    assert torch.isfinite(s.grad).all()
    torch.autograd.gradcheck(lambda t: symmetric_normalize(t, kernel, mask), (s.detach().clone().requires_grad_(),))


def test_relu_row_of_zeros_is_zero_not_nan():
    s = -torch.ones(1, 4, 4, dtype=torch.float64)  # relu(s) == 0 everywhere: every degree is 0
    assert (symmetric_normalize(s, "relu") == 0).all()


@pytest.mark.parametrize("kernel", ["exp", "sigmoid"])
def test_dense_affinity_gradients_at_spread_scores(kernel):
    x = (torch.randn(2, 4, 9, dtype=torch.float64) * 6).requires_grad_(True)  # scores up to a few hundred
    selector = DenseAffinity(kernel=kernel, normalize="symmetric")
    torch.autograd.gradcheck(lambda t: selector.affinity(t), (x,))
    a32 = selector.affinity(x.detach().float())
    torch.testing.assert_close(a32.double(), naive(torch.einsum("bcn,bcm->bnm", x, x).unsqueeze(1).detach(), kernel),
                               rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ["snl2d", "gsnl2d", "cayley_snl2d", "snl1d"])
def test_fresh_block_on_large_inputs_is_finite(name):
    # the reproduction: a fresh SNL2d(8) on randn * 10 in float32 gave NaN for 20 of 20 seeds
    shape = operators.example(name).input_shape
    for seed in range(20):
        torch.manual_seed(seed)
        layer = operators.create(name, in_channels=8).eval()
        with torch.no_grad():  # a trained-looking BatchNorm, so the filtered branch reaches the output
            for p in layer.parameters():
                if p.ndim == 1:
                    p.normal_()
        x = torch.randn(*shape) * 10
        y = layer(x)
        assert torch.isfinite(y).all(), (name, seed)
        weight = layer.neighborhood(x).weight
        reference = layer.double().neighborhood(x.double()).weight
        torch.testing.assert_close(weight.double(), reference, rtol=1e-3, atol=1e-5)
