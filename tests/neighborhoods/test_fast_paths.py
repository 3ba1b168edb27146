"""The fast-path registry: every registered twin is exercised against its reference path here;
why_not explains every configuration no twin covers; keys are exact types."""

import re

import pytest
import torch

import operators
from comparisons.theorems.base import max_error
from neighborhoods import NeighborAggregator, fast_paths
from neighborhoods.combiners import CayleyFilter, Conv1D, GraphFilter, WeightedMean, chebyshev
from neighborhoods.selectors import (CompactAffinity, DenseAffinity, FixedSpatial, HardKNN, NeighborhoodWindow,
                                     SoftmaxAll)
from operator_neighborhoods import NAMES, aggregators

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def op(name, shape, **kwargs):
    return lambda: (operators.create(name, **kwargs), shape)


def pair(selector, combiner, shape):
    return lambda: (NeighborAggregator(selector(), combiner()), shape)


#: for every registered (selector, combiner) pair: layers that take its fast path, and input shapes
CASES = {
    (FixedSpatial, Conv1D): [
        op("conv2d", (2, 3, 7, 6), in_channels=3, out_channels=4, kernel_size=3, padding=1),
        op("conv2d", (2, 4, 8, 7), in_channels=4, out_channels=2, kernel_size=(3, 2), stride=2, dilation=(1, 2),
           padding=(1, 0), padding_mode="reflect", groups=2),
        op("conv1d", (2, 3, 9), in_channels=3, out_channels=3, kernel_size=4, padding="same", padding_mode="circular"),
    ],
    (HardKNN, Conv1D): [op("convnn2d_location", (2, 3, 5, 6), in_channels=3, out_channels=4),
                        op("convnn1d", (2, 3, 8), in_channels=3, out_channels=2, k=3, similarity="location"),
                        # content k-NN: gather + one GEMM (knn_gather_linear)
                        op("convnn2d", (2, 3, 5, 6), in_channels=3, out_channels=4, k=5),
                        op("convnn2d", (2, 3, 7, 6), in_channels=3, out_channels=2, k=4, similarity="hybrid",
                           stride=2, padding=2),
                        op("convnn2d", (2, 3, 6, 6), in_channels=3, out_channels=3, k=6, similarity="euclidean",
                           sampling="spatial", samples=3, candidate_padding=1),
                        op("convnn1d", (2, 3, 9), in_channels=3, out_channels=2, k=3),
                        op("convnn2d", (2, 3, 5, 5), in_channels=3, out_channels=2, k=4, similarity="location")],
    (DenseAffinity, WeightedMean): [pair(lambda: DenseAffinity(num_heads=3), lambda: WeightedMean(6), (2, 6, 3, 4)),
                                    pair(lambda: DenseAffinity(scale=0.5), lambda: WeightedMean(3, 4, 5), (2, 3, 7))],
    (SoftmaxAll, WeightedMean): [op("self_attention2d", (2, 4, 3, 5), in_channels=4, num_heads=2),
                                 op("self_attention", (2, 5, 4), embed_dim=4, num_heads=1)],
    (DenseAffinity, GraphFilter): [op("nonlocal_stage2d", (2, 8, 4, 5), in_channels=8),
                                   op("double_attention1d", (2, 8, 11), in_channels=8),
                                   op("nonlocal2d", (2, 4, 6, 6), in_channels=4),
                                   op("nonlocal1d", (2, 4, 9), in_channels=4, mode="gaussian")],
    (SoftmaxAll, GraphFilter): [pair(lambda: SoftmaxAll(4, num_heads=2),
                                     lambda: GraphFilter(4, 4, polynomials=chebyshev(2)), (2, 4, 3, 4))],
    (DenseAffinity, CayleyFilter): [pair(lambda: DenseAffinity(), lambda: CayleyFilter(3), (2, 3, 4, 4))],
    (SoftmaxAll, CayleyFilter): [pair(lambda: SoftmaxAll(3), lambda: CayleyFilter(3, 2), (2, 3, 10))],
    (NeighborhoodWindow, WeightedMean): [
        op("neighborhood_attention2d", (2, 4, 6, 7), in_channels=4, num_heads=2, kernel_size=3),
        op("neighborhood_attention2d", (2, 4, 9, 8), in_channels=4, kernel_size=(3, 2), dilation=(2, 3),
           value_channels=6, out_channels=5, num_heads=2),
        op("neighborhood_attention1d", (2, 3, 12), in_channels=3, kernel_size=4, dilation=2),
        op("neighborhood_attention3d", (2, 4, 4, 5, 5), in_channels=4, kernel_size=(3, 2, 3), num_heads=2),
    ],
    (CompactAffinity, GraphFilter): [op("cgnl2d", (2, 8, 4, 3), in_channels=8, groups=2),
                                     op("cgnl1d", (2, 8, 7), in_channels=8, kernel="gaussian", normalize="row")],
}


def test_every_registered_fast_path_has_cases_here():
    assert set(fast_paths.registered()) == set(CASES)


def inner(layer):
    """The aggregator a registry layer is (every case here is one)."""
    (agg,) = aggregators(layer)
    return agg


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("key", list(CASES), ids=lambda k: f"{k[0].__name__}-{k[1].__name__}")
def test_fast_path_equals_reference(key, dtype, spy):
    for seed, build in enumerate(CASES[key]):
        torch.manual_seed(seed)
        layer, shape = build()
        layer = layer.to(dtype)
        for p in layer.parameters():  # zero-initialised norms would hide the filter: randomise everything
            torch.nn.init.normal_(p, std=0.5)
        assert inner(layer).why_not_fast() is None
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(*shape, dtype=dtype, generator=generator, requires_grad=True)
        before = spy.get(key, 0)
        err = max_error(lambda: layer(x, path="fast"), lambda: layer(x, path="reference"),
                        [x, *layer.parameters()], generator)
        assert spy.get(key, 0) > before, f"{key} was not the path taken"
        assert err <= TOL[dtype], f"case {seed}: fast vs reference differ by {err}"


@pytest.mark.parametrize("name", NAMES)
def test_why_not_fast_decides_what_path_fast_does(name):
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs)
    x = torch.randn(*ex.input_shape)
    for agg in aggregators(layer):
        reason = agg.why_not_fast()
        if reason is None:
            assert agg.fast_path_name() is not None
            agg(x if agg is layer else _input_of(agg, layer, x), path="fast")
        else:
            assert isinstance(reason, str) and len(reason) > 20 and agg.fast_path_name() is None
            with pytest.raises(ValueError, match="path='fast' but " + re.escape(reason)):
                agg(x if agg is layer else _input_of(agg, layer, x), path="fast")


def _input_of(agg, layer, x):
    """Composite layers' parts (BranchingConv2d): the branches read x, the 1x1 mix reads the concatenation."""
    return x if agg.combiner.in_channels == x.shape[1] else torch.randn(x.shape[0], agg.combiner.in_channels,
                                                                        *x.shape[2:])


def test_reasons_name_the_configuration():
    mismatch = NeighborAggregator(FixedSpatial(3), Conv1D(2, 2, (2, 2)))
    assert "4 slots" in mismatch.why_not_fast() and "9 taps" in mismatch.why_not_fast()
    with pytest.raises(ValueError, match="path='fast' but the Conv1D weight has 4 slots"):
        mismatch(torch.randn(1, 2, 5, 5), path="fast")
    with pytest.raises(ValueError, match="slots"):  # auto falls back to the reference path's own error
        mismatch(torch.randn(1, 2, 5, 5))
    # the location k-NN is a convolution only where its k nearest are a window; elsewhere it is gathered
    window = NeighborAggregator(HardKNN(9, space="positions", metric="chebyshev", order="index", padding=1),
                                Conv1D(2, 2, 9))
    assert window.fast_path_name() == "F.conv2d"
    unpadded = NeighborAggregator(HardKNN(9, space="positions", metric="chebyshev", order="index"), Conv1D(2, 2, 9))
    assert unpadded.why_not_fast() is None and unpadded.fast_path_name() == "blocked k-NN + gather + F.linear"
    grouped = NeighborAggregator(HardKNN(3), Conv1D(4, 4, 3, groups=2))
    assert "groups=2" in grouped.why_not_fast()
    assert "3 dimensions" in operators.create("convnn2d", in_channels=2, out_channels=2).why_not_fast(
        torch.randn(1, 2, 5))
    assert "normalize='symmetric'" in operators.create("snl2d", in_channels=4).why_not_fast()
    assert "no fast path is registered for (ConcatAffinity, GraphFilter)" in operators.create(
        "nonlocal2d_concatenation", in_channels=4).why_not_fast()
    assert "(N3, Projection)" in operators.create("knnblock2d", in_channels=2, patch_size=2, patch_stride=1,
                                                  window=4).why_not_fast()
    double = operators.create("double_attention2d", in_channels=8)
    assert double.why_not_fast() is None
    assert "mask" in double.why_not_fast(mask=torch.ones(4, 4, dtype=torch.bool))


def test_fast_path_names():
    assert operators.create("conv2d", in_channels=2, out_channels=2, kernel_size=3).fast_path_name() == "F.conv2d"
    assert operators.create("conv1d", in_channels=2, out_channels=2, kernel_size=3).fast_path_name() == "F.conv1d"
    assert operators.create("convnn2d_location", in_channels=2, out_channels=2).fast_path_name() == "F.conv2d"
    assert operators.create("self_attention2d", in_channels=4).fast_path_name() == "F.scaled_dot_product_attention"
    assert operators.create("double_attention2d", in_channels=8).fast_path_name() == "Q @ (K^T @ Z)"
    assert operators.create("snl2d", in_channels=4).fast_path_name() is None
    conv = operators.create("conv2d", in_channels=2, out_channels=2, kernel_size=3)
    assert conv.fast_path.name == "window_conv" and conv.fast_path.selector is FixedSpatial


def test_keys_are_exact_types():
    class MyWindow(FixedSpatial):
        pass

    layer = NeighborAggregator(MyWindow(3, padding=1), Conv1D(2, 2, (3, 3)))
    assert layer.fast_path is None
    assert "no fast path is registered for (MyWindow, Conv1D)" in layer.why_not_fast()
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(layer(x), torch.nn.functional.conv2d(x, layer.combiner.weight, layer.combiner.bias,
                                                                    padding=1))


def test_registering_twice_or_a_non_class_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        fast_paths.fast_path(FixedSpatial, Conv1D, why_not=lambda *a, **k: None, kernel="x")(lambda *a: None)
    with pytest.raises(TypeError, match="classes"):
        fast_paths.fast_path(FixedSpatial(3), Conv1D, why_not=lambda *a, **k: None, kernel="x")
