"""Neighborhood.query_map / query_at: one query's weights painted onto the input's pixels.

The registry walk checks every operator's maps against the weight mass read from
``to_dense``; the operator-specific tests compare against independent computations: the
gradient of ``F.conv2d`` for a window, the ConvNN picks, ``nn.MultiheadAttention``'s
weights, ``F.fold`` of the chosen N3 patches, an upsampled pooled attention row.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import operators
from neighborhoods import Neighborhood
from neighborhoods.footprint import PixelFootprint, TokenGrid
from neighborhoods.selectors import FixedSpatial
from operator_neighborhoods import NAMES, example_neighborhoods

@pytest.mark.parametrize("name", NAMES)
def test_every_operator_paints_a_finite_map_holding_the_weight_mass(name):
    found = example_neighborhoods(name)
    assert found, f"{name} holds no NeighborAggregator"
    for nbhd, x in found:
        spatial = tuple(x.shape[2:]) if name != "self_attention" else (x.shape[1],)  # MHA layout (B, N, E)
        dense = nbhd.to_dense()  # (B, H, Nq, S, Nk)
        for batch in (0, dense.shape[0] - 1):
            for query in sorted({0, nbhd.num_queries // 2, nbhd.num_queries - 1}):
                m = nbhd.query_map(query, batch=batch)
                assert m.shape == spatial
                assert torch.isfinite(m).all()
                mass = dense[batch, :, query].sum((-1, -2)).mean(0)
                torch.testing.assert_close(m.sum().double(), mass, rtol=0, atol=1e-10)
                for slot in (0, nbhd.num_slots - 1):
                    torch.testing.assert_close(nbhd.query_map(query, batch=batch, slot=slot).sum().double(),
                                               dense[batch, :, query, slot].sum(-1).mean(0), rtol=0, atol=1e-10)


def conv_windows_by_gradient(x_shape, kernel, stride, padding, dilation, mode):
    """How often each pixel is read by every output, ``(Nq, *x_shape)``: the input gradient of output
    ``q`` of a ones-kernel F.conv2d, for every q at once (batch element q backs output q)."""
    pads = [p for p in reversed(padding) for _ in range(2)]  # F.pad: last axis first
    ones = torch.ones(1, 1, *kernel, dtype=torch.float64)

    def conv(x):
        return F.conv2d(F.pad(x, pads, mode="constant" if mode == "zeros" else mode), ones, stride=stride,
                        dilation=dilation)

    nq = conv(torch.zeros(1, 1, *x_shape, dtype=torch.float64)).numel()
    x = torch.zeros(nq, 1, *x_shape, dtype=torch.float64, requires_grad=True)
    conv(x).flatten(1).diagonal().sum().backward()
    return x.grad[:, 0]


@pytest.mark.parametrize("kernel,stride,padding,dilation,mode", [
    ((3, 3), (1, 1), (1, 1), (1, 1), "zeros"),
    ((3, 2), (2, 1), (1, 0), (1, 2), "zeros"),
    ((5, 3), (2, 2), (2, 1), (1, 1), "zeros"),
    ((3, 3), (1, 1), (1, 1), (1, 1), "reflect"),
    ((3, 3), (1, 2), (1, 1), (2, 1), "circular"),
    ((2, 3), (1, 1), (0, 0), (1, 1), "zeros"),
])
def test_conv_map_is_its_window(kernel, stride, padding, dilation, mode):
    shape = (6, 7)
    selector = FixedSpatial(kernel, stride, padding, dilation, mode)
    nbhd = selector(torch.randn(1, 1, *shape))
    windows = conv_windows_by_gradient(shape, kernel, stride, padding, dilation, mode)
    assert windows.shape[0] == nbhd.num_queries
    for query in range(nbhd.num_queries):
        torch.testing.assert_close(nbhd.query_map(query).double(), windows[query], rtol=0, atol=0)


def test_conv_map_by_index_arithmetic_and_query_at():
    conv = operators.create("conv2d", in_channels=1, out_channels=1, kernel_size=3, stride=2, padding=1)
    nbhd = conv.neighborhood(torch.randn(1, 1, 7, 8))
    assert nbhd.query_shape == (4, 4)
    for i in range(4):
        for j in range(4):
            expected = torch.zeros(7, 8)
            rows = [r for r in range(2 * i - 1, 2 * i + 2) if 0 <= r < 7]
            cols = [c for c in range(2 * j - 1, 2 * j + 2) if 0 <= c < 8]
            expected[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = 1
            torch.testing.assert_close(nbhd.query_map((i, j)), expected, rtol=0, atol=0)
            assert nbhd.query_at((2 * i, 2 * j)) == i * 4 + j  # the window's centre pixel


@pytest.mark.parametrize("name", ["convnn2d", "convnn2d_euclidean", "convnn2d_hybrid", "convnn1d"])
def test_convnn_map_has_exactly_k_picks(name):
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs)
    k = layer.selector.k
    x = torch.randn(*ex.input_shape)
    nbhd = layer.neighborhood(x)
    for batch in range(x.shape[0]):
        for query in range(nbhd.num_queries):
            m = nbhd.query_map(query, batch=batch)
            assert int((m != 0).sum()) == k and set(m[m != 0].tolist()) == {1.0}
            picks = nbhd.index[batch, query]
            assert torch.equal(m.flatten().nonzero().flatten(), picks.sort().values)
            assert m.flatten()[query] == 1  # ConvNN keeps the query itself


def test_convnn_padding_picks_reach_no_pixel():
    layer = operators.create("convnn2d_location", in_channels=2, out_channels=2)
    nbhd = layer.neighborhood(torch.randn(1, 2, 5, 5))
    corner = nbhd.query_map((0, 0))
    assert corner.sum() == int(nbhd.valid[0, 0].sum()) == 4


@pytest.mark.parametrize("heads", [1, 2])
def test_attention_map_is_the_mha_weights_row(heads):
    b, n, e = 2, 7, 8
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True, dtype=torch.float64)
    ours = operators.SelfAttention(e, heads, dtype=torch.float64)
    ours.load_state_dict(mha.state_dict())
    x = torch.randn(b, n, e, dtype=torch.float64)
    per_head = mha(x, x, x, need_weights=True, average_attn_weights=False)[1]  # (B, H, N, N)
    nbhd = ours.neighborhood(x)
    for batch in range(b):
        for query in range(n):
            torch.testing.assert_close(nbhd.query_map(query, batch=batch), per_head[batch, :, query].mean(0),
                                       rtol=0, atol=1e-12)
            for h in range(heads):
                torch.testing.assert_close(nbhd.query_map(query, batch=batch, head=h), per_head[batch, h, query],
                                           rtol=0, atol=1e-12)


def test_attention2d_map_matches_softmax_of_scores():
    layer = operators.create("self_attention2d", in_channels=4, num_heads=2).double()
    x = torch.randn(1, 4, 3, 5, dtype=torch.float64)
    q, k = layer.selector.project(x)
    a = (q @ k.transpose(-1, -2) * layer.selector.scale).softmax(-1)  # (1, H, N, N)
    nbhd = layer.neighborhood(x)
    torch.testing.assert_close(nbhd.query_map((1, 2), head=1), a[0, 1, 7].reshape(3, 5), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 4, 6, 6), (2, 4, 7, 5), (2, 4, 11)])
def test_nonlocal_pooled_keys_spread_over_their_2x2_blocks(shape):
    layer = (operators.NonLocalBlock2d if len(shape) == 4 else operators.NonLocalBlock1d)(4).double()
    x = torch.randn(*shape, dtype=torch.float64)
    nbhd = layer.neighborhood(x)
    spatial = shape[2:]
    pooled = tuple(s // 2 for s in spatial)
    assert nbhd.num_keys == math.prod(pooled)
    for query in (0, nbhd.num_queries - 1):
        row = nbhd.to_dense()[1, 0, query, 0].reshape(pooled)
        expected = torch.zeros(spatial, dtype=torch.float64)
        spread = row
        for axis in range(len(spatial)):
            spread = spread.repeat_interleave(2, dim=axis)
        expected[tuple(slice(0, 2 * p) for p in pooled)] = spread / 2 ** len(spatial)
        torch.testing.assert_close(nbhd.query_map(query, batch=1), expected, rtol=0, atol=1e-15)
        assert abs(nbhd.query_map(query, batch=1).sum().item() - 1) < 1e-12  # a softmax row


def test_n3_hard_map_is_the_chosen_patches_folded():
    layer = operators.create("knnblock2d", in_channels=3, k=3, patch_size=4, patch_stride=2, window=8)
    x = torch.randn(1, 3, 12, 10)
    nbhd = layer.neighborhood(x)
    p = 4
    for query in range(nbhd.num_queries):
        chosen = torch.zeros(1, p * p, nbhd.num_keys)
        chosen[0, :, nbhd.index[0, query]] = 1.0 / (p * p)  # each chosen patch, its weight spread evenly
        expected = F.fold(chosen, (12, 10), p, stride=2)[0, 0]
        torch.testing.assert_close(nbhd.query_map(query), expected, rtol=0, atol=1e-6)
        assert abs(nbhd.query_map(query).sum().item() - 3) < 1e-5


def test_n3_soft_map_mass_is_k_per_query():
    ex = operators.example("n3block2d")
    layer = operators.create("n3block2d", **ex.kwargs).double()
    k = layer.selector.k
    x = torch.randn(*ex.input_shape, dtype=torch.float64)
    nbhd = layer.neighborhood(x)
    for query in range(nbhd.num_queries):
        m = nbhd.query_map(query, batch=1)
        assert (m >= 0).all()
        assert abs(m.sum().item() - k) < 1e-10
        # the query patch itself is never a candidate; its pixels still get weight from overlaps
        assert abs(nbhd.query_map(query, batch=1, slot=0).sum().item() - 1) < 1e-10


def test_n3_query_at_finds_the_patch_centred_at_a_pixel():
    layer = operators.create("knnblock2d", in_channels=1, k=2, patch_size=3, patch_stride=2, window=7)
    nbhd = layer.neighborhood(torch.randn(1, 1, 9, 11))
    grid = nbhd.query_shape
    for i in range(grid[0]):
        for j in range(grid[1]):
            assert nbhd.query_at((2 * i + 1, 2 * j + 1)) == i * grid[1] + j  # odd patch: integer centre
    assert nbhd.query_at((0, 0)) == 0 and nbhd.query_at(9 * 11 - 1) == nbhd.num_queries - 1


def test_criss_cross_map_covers_row_and_column():
    layer = operators.create("criss_cross_attention2d", in_channels=8)
    x = torch.randn(2, 8, 5, 6)
    nbhd = layer.neighborhood(x)
    m = nbhd.query_map((2, 3), batch=1)
    cross = torch.zeros(5, 6, dtype=torch.bool)
    cross[2, :] = cross[:, 3] = True
    assert ((m > 0) == cross).all()
    assert abs(m.sum().item() - 1) < 1e-6
    assert nbhd.query_at((2, 3)) == 2 * 6 + 3


def test_cgnl_entries_add_up_on_their_pixel():
    layer = operators.create("cgnl2d", in_channels=8, groups=2).double()
    x = torch.randn(1, 8, 3, 4, dtype=torch.float64)
    nbhd = layer.neighborhood(x)  # queries: (c, H, W) entries of each group
    c = nbhd.query_shape[0]
    assert nbhd.query_shape == (c, 3, 4)
    dense = nbhd.to_dense()  # (1, G, cN, 1, cN)
    per_key = dense[0, :, 5 + 12, 0].mean(0)  # entry (channel 1, pixel 5), averaged over groups
    expected = per_key.reshape(c, 12).sum(0).reshape(3, 4)
    torch.testing.assert_close(nbhd.query_map((1, 1, 1)), expected, rtol=0, atol=1e-15)
    assert nbhd.query_at((1, 1)) == 5  # the entry of channel 0


def test_bad_arguments_name_themselves():
    nbhd = FixedSpatial(3, padding=1)(torch.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="query"):
        nbhd.query_map(16)
    with pytest.raises(ValueError, match="query"):
        nbhd.query_map((4, 0))
    with pytest.raises(ValueError, match="query"):
        nbhd.query_map((1, 2, 3))
    with pytest.raises(ValueError, match="no heads"):
        nbhd.query_map(0, head=0)
    with pytest.raises(ValueError, match="slot"):
        nbhd.query_map(0, slot=9)
    with pytest.raises(TypeError, match="slot"):
        nbhd.query_map(0, slot=1.5)
    with pytest.raises(ValueError, match="pixel"):
        nbhd.query_at((4, 4))
    attn = operators.create("self_attention2d", in_channels=4, num_heads=2).neighborhood(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="batch"):
        attn.query_map(0, batch=2)
    with pytest.raises(ValueError, match="head"):
        attn.query_map(0, head=2)


def test_unknown_footprint_is_a_named_error():
    nbhd = Neighborhood(num_keys=3, query_shape=(2,), weight=torch.rand(1, 2, 3, 1))
    with pytest.raises(ValueError, match="footprint"):
        nbhd.query_map(0)
    with pytest.raises(ValueError, match="footprint places"):
        Neighborhood(num_keys=3, query_shape=(2,), weight=torch.rand(1, 2, 3, 1),
                     footprint=PixelFootprint.pixels((3,)))
    with pytest.raises(ValueError, match="inside the input"):  # the third 2-pixel block starts at pixel 4 of 4
        PixelFootprint((4,), TokenGrid.blocks((3,), (2,), (2,)), TokenGrid.pixels((4,)))


def test_query_map_takes_a_0d_integer_tensor_like_a_numpy_integer():
    # issue 19: numpy.int64 was accepted, torch.tensor(3) (what argmax returns) was not
    import numpy as np
    nbhd = operators.create("conv_nn2d", in_channels=4).neighborhood(torch.randn(2, 4, 5, 6))
    expected = nbhd.query_map(7, batch=1, slot=2)
    for query in (np.int64(7), torch.tensor(7), torch.tensor(7, dtype=torch.int32)):
        assert torch.equal(nbhd.query_map(query, batch=torch.tensor(1), slot=torch.tensor(2)), expected)
    assert torch.equal(nbhd.query_map((torch.tensor(1), torch.tensor(1))), nbhd.query_map(7))
    for bad in (torch.tensor(7.0), torch.tensor([7]), torch.tensor(True)):
        with pytest.raises(TypeError, match="query must be an int"):
            nbhd.query_map(bad)
