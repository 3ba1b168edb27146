"""Bad input gets a ValueError / TypeError naming the argument, what was expected and what was given."""

import pytest
import torch

import operators
from neighborhoods.functional import gather, grid_coordinates, knn, log1mexp, window_index
from neighborhoods.selectors import HardKNN
from operators import (BranchingConv2d, Conv1d, Conv2d, ConvNN1d, ConvNN2d, N3Block2d, SelfAttention,
                       SelfAttention2d)


# ---- construction --------------------------------------------------------------------------------
@pytest.mark.parametrize("build, error, words", [
    (lambda: ConvNN2d(3, 4, k=0), ValueError, ["k", ">= 1", "k=0"]),
    (lambda: ConvNN2d(3, 4, k=2.5), TypeError, ["k", "int", "2.5"]),
    (lambda: ConvNN2d(3, 4, k=True), TypeError, ["k", "int", "True"]),
    (lambda: ConvNN2d(3, 4, similarity="manhattan"), ValueError, ["similarity", "cosine", "'manhattan'"]),
    (lambda: ConvNN2d(3, 4, metric="manhattan"), ValueError, ["metric", "chebyshev", "'manhattan'"]),
    (lambda: ConvNN2d(3, 4, sampling="grid"), ValueError, ["sampling", "random", "'grid'"]),
    (lambda: ConvNN2d(3, 4, k=9, sampling="random", samples=5), ValueError, ["samples", "k=9", "samples=5"]),
    (lambda: ConvNN2d(3, 4, k=10, sampling="spatial", samples=3), ValueError, ["samples", "k=10", "samples=3"]),
    (lambda: ConvNN2d(3, 4, sampling="random"), ValueError, ["samples", "None"]),
    (lambda: ConvNN2d(3, 4, samples=4), ValueError, ["samples", "'all'"]),
    (lambda: ConvNN2d(3, 4, candidate_padding=-1), ValueError, ["padding", ">= 0", "-1"]),
    (lambda: ConvNN2d(3, 4, hybrid_lambda=1.5), ValueError, ["hybrid_lambda", "<= 1", "1.5"]),
    (lambda: ConvNN2d(3.0, 4), TypeError, ["in_channels", "int", "3.0"]),
    (lambda: ConvNN1d(3, 0), ValueError, ["out_channels", ">= 1"]),
    (lambda: HardKNN(3, space="colour"), ValueError, ["space", "features", "'colour'"]),
    (lambda: HardKNN(3, order="random"), ValueError, ["order", "index", "'random'"]),
    (lambda: HardKNN(3, ndim=0), ValueError, ["ndim", ">= 1", "0"]),
    (lambda: BranchingConv2d(3, 4, ratio=1.5), ValueError, ["ratio", "<= 1", "1.5"]),
    (lambda: BranchingConv2d(3, 4, ratio="half"), TypeError, ["ratio", "real number", "'half'"]),
    (lambda: Conv2d(3, 4, 3, padding_mode="mirror"), ValueError, ["padding_mode", "reflect", "'mirror'"]),
    (lambda: Conv2d(3, 4, 3, padding="full"), ValueError, ["padding", "same", "'full'"]),
    (lambda: Conv2d(3, 4, 3.0), TypeError, ["kernel_size", "int", "3.0"]),
    (lambda: Conv2d(3, 4, (3, 1.5)), TypeError, ["kernel_size[1]", "int", "1.5"]),
    (lambda: Conv2d(3, 4, 0), ValueError, ["kernel_size", ">= 1"]),
    (lambda: Conv2d(3, 4, 3, stride=2, padding="same"), ValueError, ["same", "stride"]),
    (lambda: Conv2d(3, 4, 3, groups=2), ValueError, ["in_channels", "groups"]),
    (lambda: Conv1d(3, 4, (3, 3)), ValueError, ["kernel_size", "1 entries"]),
])
def test_bad_construction(build, error, words):
    with pytest.raises(error) as info:
        build()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


# ---- forward -------------------------------------------------------------------------------------
LAYERS = {
    "conv2d": lambda **f: Conv2d(3, 4, 3, padding=1, **f),
    "conv1d": lambda **f: Conv1d(3, 4, 3, padding=1, **f),
    "convnn2d": lambda **f: ConvNN2d(3, 4, k=5, **f),
    "convnn1d": lambda **f: ConvNN1d(3, 4, k=3, **f),
    "convnn2d_location": lambda **f: ConvNN2d(3, 4, k=9, similarity="location", **f),
}
GOOD_SHAPE = {"conv2d": (2, 3, 6, 6), "conv1d": (2, 3, 8), "convnn2d": (2, 3, 6, 6), "convnn1d": (2, 3, 8),
              "convnn2d_location": (2, 3, 6, 6)}


@pytest.mark.parametrize("name", LAYERS)
def test_wrong_rank(name):
    shape = GOOD_SHAPE[name]
    bad = (*shape, 2) if len(shape) == 4 else (*shape, 2, 2)
    with pytest.raises(ValueError, match=rf"x must have {len(shape)} dimensions, got shape \({bad[0]}, "):
        LAYERS[name]()(torch.randn(*bad))


@pytest.mark.parametrize("name", LAYERS)
def test_channel_mismatch(name):
    shape = list(GOOD_SHAPE[name])
    shape[1] = 5
    with pytest.raises(ValueError, match=r"x must have 3 channels in dim 1, got shape .* with 5"):
        LAYERS[name]()(torch.randn(*shape))


@pytest.mark.parametrize("name", LAYERS)
def test_dtype_mismatch(name):
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but weight has dtype torch.float32"):
        LAYERS[name]()(torch.randn(*GOOD_SHAPE[name], dtype=torch.float64))


@pytest.mark.parametrize("name", LAYERS)
def test_device_mismatch(name):
    layer = LAYERS[name](device="meta")
    with pytest.raises(ValueError, match=r"x is on device cpu but weight is on meta"):
        layer(torch.randn(*GOOD_SHAPE[name]))


@pytest.mark.parametrize("name", LAYERS)
def test_integer_input(name):
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor, got dtype torch.int64"):
        LAYERS[name]()(torch.ones(*GOOD_SHAPE[name], dtype=torch.long))


def test_k_larger_than_candidates():
    with pytest.raises(ValueError, match=r"k must be <= the number of candidates, got k=10, candidates=9"):
        ConvNN2d(3, 4, k=10)(torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"k must be <= the number of candidates, got k=6, candidates=5"):
        ConvNN1d(3, 4, k=6)(torch.randn(1, 3, 5))


def test_samples_larger_than_the_grid():
    msg = r"samples must be <= the 9 tokens of the image grid \(3, 3\), got samples=12"
    with pytest.raises(ValueError, match=msg):
        ConvNN2d(3, 4, k=5, sampling="random", samples=12)(torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"samples=4 evenly spaced tokens per axis.*\(3, 5\)"):
        ConvNN2d(3, 4, k=5, sampling="spatial", samples=4)(torch.randn(1, 3, 3, 5))


def test_conv_input_too_small():
    with pytest.raises(ValueError, match=r"too small for kernel_size=\(5, 5\)"):
        Conv2d(3, 4, 5)(torch.randn(1, 3, 4, 6))


def test_knn_bad_arguments():
    q = torch.randn(1, 4, 3)
    with pytest.raises(ValueError, match=r"k must be <= the number of candidate keys, got k=5, candidates=4"):
        knn(q, q, 5)
    with pytest.raises(ValueError, match=r"k must be >= 1, got k=0"):
        knn(q, q, 0)
    with pytest.raises(ValueError, match=r"metric must be one of .*got metric='l1'"):
        knn(q, q, 2, "l1")
    with pytest.raises(TypeError, match=r"block_size must be an int, got 2.0"):
        knn(q, q, 2, block_size=2.0)
    with pytest.raises(ValueError, match=r"queries \(B, Nq, D\) and keys \(B, Nk, D\) must agree"):
        knn(q, torch.randn(1, 4, 2), 2)


# ---- issue 9.6: every argument a user can pass gets a result or a named error --------------------
def _n3_1d():
    return operators.create("n3_block1d", **operators.example("n3_block1d").kwargs)


@pytest.mark.parametrize("call, error, words", [
    (lambda: SelfAttention2d(4, num_heads=0), ValueError, ["num_heads", ">= 1", "num_heads=0"]),
    (lambda: SelfAttention2d(4, value_channels=0), ValueError, ["value_channels", ">= 1", "value_channels=0"]),
    (lambda: SelfAttention2d(4, out_channels=0), ValueError, ["out_channels", ">= 1", "out_channels=0"]),
    (lambda: N3Block2d(3, embed_channels=0), ValueError, ["embed_channels", ">= 1", "embed_channels=0"]),
    (lambda: _n3_1d()(torch.randn(2, 4, 9, 9)), ValueError, ["x must have 3 dimensions", "(2, 4, 9, 9)"]),
    (lambda: window_index((5, 5), (3, 3), (0, 1), ((1, 1), (1, 1)), (1, 1)), ValueError,
     ["stride[0]", ">= 1", "stride[0]=0"]),
    (lambda: window_index((5, 5), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 0)), ValueError,
     ["dilation[1]", ">= 1", "dilation[1]=0"]),
    (lambda: window_index((5, 5), (3, 3), (1, 1), ((-1, 1), (1, 1)), (1, 1)), ValueError,
     ["padding[0][0]", ">= 0", "padding[0][0]=-1"]),
    (lambda: SelfAttention(8, 2)(torch.randn(2, 5, 8), key_padding_mask=torch.zeros(2, 5, dtype=torch.long)),
     TypeError, ["key_padding_mask must be bool or floating point", "torch.int64"]),
    (lambda: operators.available(3), TypeError, ["str", "int"]),
    (lambda: grid_coordinates(()), ValueError, ["spatial_shape", "non-empty", "()"]),
    (lambda: grid_coordinates((3, -1)), ValueError, ["spatial_shape[1]", ">= 0", "-1"]),
    (lambda: log1mexp(torch.tensor([0.5, -1.0])), ValueError, ["a <= 0", "0.5"]),
    (lambda: gather(torch.randn(2, 5, 3), torch.zeros(4, 2, dtype=torch.long), torch.ones(4, 2)), TypeError,
     ["valid", "bool", "torch.float32"]),
])
def test_named_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_attn_mask_int_dtype_is_named_as_attn_mask():
    with pytest.raises(TypeError, match=r"attn_mask must be bool or floating point, got dtype torch.int64"):
        SelfAttention(8, 2)(torch.randn(2, 5, 8), attn_mask=torch.zeros(5, 5, dtype=torch.long))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_without_queries_is_empty(metric):
    scores, index = knn(torch.randn(2, 0, 3), torch.randn(2, 5, 3), 2, metric)
    assert scores.shape == (2, 0, 2) and scores.dtype == torch.float32
    assert index.shape == (2, 0, 2) and index.dtype == torch.long
