"""Neighborhood.to_dense: one (B, H, Nq, S, Nk) layout for every operator, refused when too big;
dense selectors feeding head-less combiners (Conv1D, Projection)."""

import pytest
import torch

import operators
from neighborhoods import NeighborAggregator, Neighborhood
from neighborhoods.combiners import Conv1D, Projection
from neighborhoods.selectors import FixedSpatial, SoftmaxAll

from operator_neighborhoods import NAMES, example_neighborhoods


@pytest.mark.parametrize("name", NAMES)
def test_aggregate_is_the_dense_tensor_times_the_values(name):
    for nbhd, _ in example_neighborhoods(name):
        dense = nbhd.to_dense(batch=2)
        b, h, nq, s, nk = dense.shape
        assert (nq, s, nk) == (nbhd.num_queries, nbhd.num_slots, nbhd.num_keys)
        assert h == (nbhd.num_heads or 1)
        values = torch.randn(b, h, nk, 3, dtype=torch.float64)
        ours = nbhd.aggregate(values if nbhd.num_heads else values[:, 0])
        if not nbhd.num_heads:
            ours = ours.unsqueeze(1)
        torch.testing.assert_close(ours.expand(b, h, nq, s, 3), torch.einsum("bhqsn,bhnc->bhqsc", dense, values),
                                   rtol=0, atol=1e-12)


def test_hard_slots_are_one_hot_and_padding_taps_are_zero():
    nbhd = FixedSpatial(3, padding=1)(torch.randn(1, 1, 4, 5))
    dense = nbhd.to_dense(batch=3)
    assert dense.shape == (3, 1, 20, 9, 20)
    assert set(dense.unique().tolist()) == {0.0, 1.0}
    assert dense[0, 0, 0].sum() == 4  # a corner reads 4 pixels, 5 taps fall in the padding
    assert torch.equal(dense.sum(-1), nbhd.valid.to(dense.dtype).expand(3, 1, 20, 9))


def test_to_dense_is_differentiable():
    weight = torch.rand(2, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 5, (3, 4))
    nbhd = Neighborhood(num_keys=5, query_shape=(3,), index=index, weight=weight)
    assert torch.autograd.gradcheck(lambda w: Neighborhood(num_keys=5, query_shape=(3,), index=index,
                                                           weight=w).to_dense(), (weight,))
    assert nbhd.to_dense().requires_grad


def test_too_large_is_refused_before_allocating():
    nbhd = FixedSpatial(3, padding=1)(torch.randn(1, 1, 1000, 1000))  # a (1, 1, 1e6, 9, 1e6) tensor: 72 TB
    with pytest.raises(ValueError, match=r"bytes.*max_bytes"):
        nbhd.to_dense()
    small = FixedSpatial(3)(torch.randn(1, 1, 4, 4))
    needed = 1 * 1 * 4 * 9 * (16 + 9) * 8
    with pytest.raises(ValueError, match=f"about {needed} bytes"):
        small.to_dense(max_bytes=needed - 1)
    assert small.to_dense(max_bytes=needed).shape == (1, 1, 4, 9, 16)
    with pytest.raises(TypeError, match="max_bytes"):
        small.to_dense(max_bytes=1.5)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_dense_selector_feeds_conv1d(dtype, tol):
    layer = NeighborAggregator(SoftmaxAll(4, num_heads=1), Conv1D(4, 6, 1)).to(dtype)
    x = torch.randn(2, 4, 3, 5, dtype=dtype, requires_grad=True)
    q, k = layer.selector.project(x)
    a = (q @ k.transpose(-1, -2) * layer.selector.scale).softmax(-1)[:, 0]  # (B, N, N)
    tokens = x.flatten(2).transpose(1, 2)
    expected = (a @ tokens @ layer.combiner.weight[:, :, 0].T + layer.combiner.bias).transpose(1, 2).reshape(2, 6, 3, 5)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=tol)
    g1, = torch.autograd.grad(layer(x).square().sum(), x)
    g2, = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(g1, g2, rtol=0, atol=tol * 10)


def test_dense_selector_feeds_projection():
    layer = NeighborAggregator(SoftmaxAll(3, num_heads=1), Projection(3, 1)).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    a = layer.neighborhood(x).to_dense()[:, 0, :, 0]  # (B, N, N)
    tokens = x.flatten(2).transpose(1, 2)
    volume = (a @ tokens).transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(layer(x), torch.cat([x, volume - x], 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("combiner", [Conv1D(4, 4, 1), Projection(4, 1)])
def test_multi_head_dense_selector_with_a_headless_combiner_is_a_named_error(combiner):
    layer = NeighborAggregator(SoftmaxAll(4, num_heads=2), combiner)
    with pytest.raises(ValueError, match="num_heads=2.*per head"):
        layer(torch.randn(2, 4, 3, 3))


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.bool])
def test_an_integer_dtype_is_refused_by_name(dtype):
    # issue 19: dtype=torch.long truncated every softmax weight to 0 and returned zeros
    nbhd = operators.create("self_attention2d", in_channels=4).neighborhood(torch.randn(1, 4, 3, 3))
    with pytest.raises(TypeError, match=r"dtype must be a floating-point.*got dtype=torch\."):
        nbhd.to_dense(dtype=dtype)
    dense = nbhd.to_dense(dtype=torch.float32)
    torch.testing.assert_close(dense.sum(-1), torch.ones_like(dense.sum(-1)))  # softmax rows sum to 1
