"""`identity_projections=True`: attention, N3 and criss-cross compare the raw input features.

Each check writes the selection out by hand from the input (no library selector involved)
and compares it with the layer's neighbourhood and output, float64.
"""

import pytest
import torch
import torch.nn.functional as F

import operators


def test_self_attention2d_is_softmax_of_raw_dot_products():
    torch.manual_seed(0)
    layer = operators.SelfAttention2d(4, identity_projections=True, dtype=torch.float64)
    assert sum(p.numel() for p in layer.parameters()) == 0
    x = torch.randn(2, 4, 5, 3, dtype=torch.float64)
    tokens = x.flatten(2).transpose(1, 2)  # (b, n, c)
    a = torch.softmax(tokens @ tokens.transpose(1, 2) / 2.0, dim=-1)  # 1 / sqrt(4)
    torch.testing.assert_close(layer.neighborhood(x).weight[:, 0, :, :, 0], a)
    expected = (a @ tokens).transpose(1, 2).reshape_as(x)
    for path in ("auto", "reference"):
        torch.testing.assert_close(layer(x, path=path), expected)
    assert "identity_projections=True" in repr(layer)


def test_self_attention2d_heads_split_raw_channels():
    layer = operators.SelfAttention2d(4, num_heads=2, identity_projections=True, dtype=torch.float64)
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    tokens = x.flatten(2).transpose(1, 2)
    for h in range(2):
        part = tokens[..., 2 * h:2 * h + 2]
        a = torch.softmax(part @ part.transpose(1, 2) / 2 ** 0.5, dim=-1)
        torch.testing.assert_close(layer.neighborhood(x).weight[:, h, :, :, 0], a)


@pytest.mark.parametrize("t", [0.3, 2.0])
def test_n3_block_matches_raw_patches(t):
    torch.manual_seed(0)
    layer = operators.N3Block2d(3, k=2, patch_size=3, patch_stride=1, window=None, identity_projections=True,
                                temperature="scalar", temp_bias=t, dtype=torch.float64)
    assert layer.selector.embedding is None
    x = torch.randn(1, 3, 6, 7, dtype=torch.float64)
    patches = F.unfold(x, 3).transpose(1, 2)[0]  # (items, 27): raw patches
    d2 = torch.cdist(patches, patches) ** 2
    nbhd = layer.neighborhood(x)
    scores = -d2.gather(1, nbhd.index)  # each query's candidates (itself excluded)
    w1 = torch.softmax(scores / t, dim=-1)  # Eq. 8
    w2 = torch.softmax((scores + torch.log1p(-w1)) / t, dim=-1)  # Eqs. 9-10: alpha + log(1 - w), over t
    torch.testing.assert_close(nbhd.weight[0], torch.stack([w1, w2], dim=-1))


def test_criss_cross_is_softmax_over_row_and_column_of_raw_dot_products():
    layer = operators.CrissCrossAttention2d(3, identity_projections=True, dtype=torch.float64)
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    tokens = x.flatten(2)[0].T  # (n, c)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    cross = (rows[:, None] == rows[None]) | (cols[:, None] == cols[None])
    a = torch.softmax((tokens @ tokens.T).masked_fill(~cross, float("-inf")), dim=-1)
    dense = layer.neighborhood(x).to_dense().reshape(20, 20)
    torch.testing.assert_close(dense, a)


def test_bad_identity_projections():
    with pytest.raises(TypeError, match="identity_projections must be a bool"):
        operators.SelfAttention2d(3, identity_projections=1)
    with pytest.raises(TypeError, match="identity_projections must be a bool"):
        operators.N3Block2d(3, identity_projections="yes")
    with pytest.raises(ValueError, match="qk_channels must equal in_channels"):
        operators.SelfAttention2d(3, qk_channels=4, identity_projections=True)
    with pytest.raises(ValueError, match="key_channels and out_channels must be None"):
        operators.CrissCrossAttention2d(3, key_channels=2, identity_projections=True)
