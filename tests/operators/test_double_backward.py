"""Second derivatives of every registered operator are exact (issue 19, item 3).

``torch.autograd.gradgradcheck`` in float64 on a tiny input, with the parameters drawn at
random (a fresh block is often the identity: a zero-initialised ``W`` or ``gamma`` makes its
second derivative trivially right). Before the fix N3 and criss-cross failed it silently
(their blocked autograd Functions had a once-only backward that did not say so), and every
softmax-attention fast path raised torch's "derivative for
aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented". The contract:
it passes, or the second backward raises a RuntimeError naming the operator; today every
operator passes. ``fast_mode`` checks random projections of the Jacobian (a wrong second
derivative shows up in them with probability 1), which keeps N3 at a fraction of a second.
"""

import pytest
import torch
from torch.autograd import gradgradcheck

import operators
from neighborhoods import NeighborAggregator
from neighborhoods.functional import candidate_sq_distances, candidate_sum
from operators.registry import entry

NAMES = operators.available()
#: smaller inputs than the registered examples where those make the check slow (N3's CNN embedding)
TINY = {"n3_block2d": (1, 3, 8, 8), "n3_block2d_cifar": (1, 3, 6, 6), "n3_block2d_digits": (1, 3, 5, 5),
        "knn_block2d": (1, 3, 8, 8), "n3_block1d": (1, 4, 7)}


def _random_layer(name):
    e = entry(name)
    torch.manual_seed(0)
    layer = e.target(**{**e.defaults, **e.example.kwargs}).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.5)
    return layer.eval(), TINY.get(name, (1, *e.example.input_shape[1:]))


@pytest.mark.parametrize("name", NAMES)
def test_second_derivative_is_exact_or_a_named_error(name):
    layer, shape = _random_layer(name)
    paths = ("auto", "reference") if isinstance(layer, NeighborAggregator) else ("auto",)
    for path in paths:
        torch.manual_seed(1)
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        kwargs = {} if path == "auto" else {"path": path}
        try:
            assert gradgradcheck(lambda t: layer(t, **kwargs), (x,), fast_mode=True), (name, path)
        except RuntimeError as err:
            if type(layer).__name__ not in str(err) and name not in str(err):
                raise


@pytest.mark.parametrize("seed", [0, 1])
def test_blocked_candidate_kernels_have_exact_second_derivatives(seed):
    # the kernels themselves, several blocks (block_size=2) so the bands differ per block
    g = torch.Generator().manual_seed(seed)
    index = torch.stack([torch.randperm(7, generator=g)[:3] for _ in range(7)])
    values = torch.randn(2, 7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.rand(2, 7, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    assert gradgradcheck(lambda v, w: candidate_sum(v, index, w, block_size=2), (values, weight))
    assert gradgradcheck(lambda e: candidate_sq_distances(e, index, block_size=2), (values,))


def test_first_derivative_under_create_graph_equals_the_blocked_one():
    # the create_graph branch computes the same gradient by the direct forms
    torch.manual_seed(0)
    index = torch.stack([torch.randperm(9)[:4] for _ in range(9)])
    values = torch.randn(2, 9, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(2, 9, 4, 3, dtype=torch.float64, requires_grad=True)
    out = candidate_sum(values, index, weight, block_size=3)
    g = torch.randn_like(out)
    plain = torch.autograd.grad(out, (values, weight), g, retain_graph=True)
    graphed = torch.autograd.grad(out, (values, weight), g, create_graph=True)
    for a, b in zip(plain, graphed):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)  # float64 round-off of two summation orders
    d = candidate_sq_distances(values, index, block_size=3)
    g = torch.randn_like(d)
    plain = torch.autograd.grad(d, values, g, retain_graph=True)[0]
    graphed = torch.autograd.grad(d, values, g, create_graph=True)[0]
    torch.testing.assert_close(plain, graphed, rtol=1e-12, atol=1e-12)
