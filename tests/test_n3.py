"""The N3 selector, Projection combiner, N3Block2d / N3Block1d / KNNBlock2d."""

import pytest
import torch
import torch.nn.functional as F

import operators
from comparisons.theorems import THEOREMS, verify
from neighborhoods import NeighborAggregator
from neighborhoods.combiners import Projection
from neighborhoods.functional import Patches, window_candidates
from neighborhoods.selectors import N3
from operators import KNNBlock2d, N3Block1d, N3Block2d

SMALL = dict(patch_size=4, patch_stride=2, window=8, embed_channels=3, hidden_channels=4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_theorem_k1_is_patch_attention(dtype):
    verdict = verify(THEOREMS["n3block.k1==patch_attention"], 1, dtype)
    assert verdict.passed, [(t.shapes, t.error) for t in verdict.trials]


def test_paper_setting_has_224_candidates_shifted_inward():
    index = window_candidates((29, 29), (15, 15))  # 150x150 image, 10x10 patches every 5 px, 80x80 window
    assert index.shape == (29 * 29, 224)
    sel = N3(7, patch_size=10, stride=5, window=80)
    assert torch.equal(sel.candidates((150, 150), torch.device("cpu"))[0], index)
    # brute force: the 15x15 block of patch positions starting at clamp(i - 7, 0, 29 - 15), minus the query
    for qi, qj in [(0, 0), (3, 20), (14, 14), (28, 27)]:
        r0, c0 = min(max(qi - 7, 0), 14), min(max(qj - 7, 0), 14)
        expected = [r * 29 + c for r in range(r0, r0 + 15) for c in range(c0, c0 + 15) if (r, c) != (qi, qj)]
        assert index[qi * 29 + qj].tolist() == expected


def test_block_shapes_and_layouts():
    x = torch.randn(2, 3, 16, 16)
    block = N3Block2d(3, k=2, project=False, **SMALL)
    y = block(x)
    assert y.shape == (2, 9, 16, 16)
    torch.testing.assert_close(y[:, :3], x)
    nbhd = block.neighborhood(x)
    assert nbhd.index.shape == (49, 8) and nbhd.weight.shape == (2, 49, 8, 2)  # 7x7 patches, 3x3 window - 1
    raw = N3Block2d(3, k=2, relative=False, project=False, **SMALL)
    raw.load_state_dict(block.state_dict())
    torch.testing.assert_close(raw(x)[:, 3:], y[:, 3:] + x.repeat(1, 2, 1, 1))
    proj = N3Block2d(3, k=2, out_channels=5, **SMALL)
    assert proj(x).shape == (2, 5, 16, 16)
    assert N3Block2d(3, k=2, **SMALL)(x).shape == (2, 3, 16, 16)  # projected back to C by default
    assert N3Block2d(3, k=1, temperature="scalar", project=False, **SMALL)(x).shape == (2, 6, 16, 16)
    assert N3Block1d(4, k=3, embed_channels=2, hidden_channels=4, project=False)(torch.randn(2, 4, 6)).shape == (
        2, 16, 6)
    assert N3Block1d(4, k=3, embed_channels=2, hidden_channels=4)(torch.randn(2, 4, 6)).shape == (2, 4, 6)


def test_temperature_is_exp_log_t_times_bias_averaged_over_patch():
    block = N3Block2d(2, k=1, **SMALL)
    x = torch.randn(1, 2, 12, 12)
    log_t = block.selector.temperature(x)
    expected = F.unfold(log_t, 4, stride=2).mean(1).exp() * 0.1
    torch.testing.assert_close(block.selector.temperatures(x), expected)
    scalar = N3Block2d(2, k=1, temperature="scalar", **SMALL)
    with torch.no_grad():
        scalar.selector.log_temperature.fill_(0.5)
    torch.testing.assert_close(scalar.selector.temperatures(x), torch.tensor(0.5).exp() * 0.1)


def test_knn_block_equals_brute_force_hard_knn():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    block = KNNBlock2d(2, k=3, patch_size=2, patch_stride=2, window=6, relative=False, project=False)  # 4x4 patches
    y = block(x)
    patches = F.unfold(x, 2, stride=2).transpose(1, 2)  # (b, 16, 8), no overlap: fold is a reshape
    vols = torch.zeros(2, 16, 3, 8, dtype=torch.float64)
    for b in range(2):
        for q in range(16):
            qi, qj = divmod(q, 4)
            r0, c0 = min(max(qi - 1, 0), 1), min(max(qj - 1, 0), 1)
            cands = [r * 4 + c for r in range(r0, r0 + 3) for c in range(c0, c0 + 3) if r * 4 + c != q]
            dist = [((patches[b, q] - patches[b, m]) ** 2).sum().item() for m in cands]
            order = sorted(range(len(cands)), key=lambda i: (dist[i], cands[i]))[:3]
            for s, i in enumerate(order):
                vols[b, q, s] = patches[b, cands[i]]
    expected = F.fold(vols.permute(0, 2, 3, 1).reshape(2, 24, 16), (8, 8), 2, stride=2)
    torch.testing.assert_close(y, torch.cat([x, expected], 1), rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: block(x), (x,))


def test_gradcheck_n3_blocks():
    block = N3Block2d(1, k=2, patch_size=2, patch_stride=2, window=4, embed_channels=2, hidden_channels=2, depth=2,
                      dtype=torch.float64).eval()
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    params = [block.selector.embedding[0].weight, block.selector.temperature[-1].bias]
    assert torch.autograd.gradcheck(lambda x, *p: block(x), (x, *params))
    block1 = N3Block1d(2, k=2, embed_channels=2, hidden_channels=2, depth=2, temperature="scalar",
                       dtype=torch.float64).eval()
    x1 = torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, t: block1(x), (x1, block1.selector.log_temperature))


def test_selector_and_combiner_compose_on_sets():
    # the set N3 block spelled out: N3 selector (all other items) + Projection, no patches
    layer = NeighborAggregator(N3(2), Projection(3, 2, out_channels=4))
    assert layer(torch.randn(2, 3, 5)).shape == (2, 4, 5)
    assert N3(2, window=3).candidates((6,), torch.device("cpu"))[0].tolist()[0] == [1, 2]


def test_registered():
    for name in ("n3block2d", "knnblock2d", "n3block1d"):
        assert operators.family(name) == "n3"


def test_bad_input():
    x = torch.randn(1, 2, 16, 16)
    with pytest.raises(ValueError, match="window must be >= patch_size"):
        N3Block2d(2, patch_size=4, patch_stride=2, window=3)
    with pytest.raises(ValueError, match="window - patch_size must be a multiple of stride"):
        N3Block2d(2, patch_size=4, patch_stride=2, window=7)
    with pytest.raises(ValueError, match=r"holds only the query itself"):  # one 10x10 patch on a padded 8x8 image
        N3Block2d(2, k=1, patch_size=10, patch_stride=5, window=10)(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="project=False returns the .* out_channels must be None"):
        N3Block2d(2, out_channels=4, project=False)
    with pytest.raises(TypeError, match="project must be a bool"):
        N3Block2d(2, project=1)
    with pytest.raises(ValueError, match=r"k must be <= the number of candidates, got k=30, candidates=8"):
        N3Block2d(2, k=30, **SMALL)(x)
    with pytest.raises(ValueError, match=r"k must be <= the number of candidates, got k=5, candidates=4"):
        N3Block1d(2, k=5)(torch.randn(1, 2, 5))
    with pytest.raises(ValueError, match="temperature must be one of"):
        N3Block2d(2, temperature="learned")
    with pytest.raises(ValueError, match="temp_bias must be > 0"):
        N3Block2d(2, temp_bias=0.0)
    with pytest.raises(ValueError, match="x must have 16 dimensions|x must have 4 dimensions"):
        N3Block2d(2, k=1, **SMALL)(torch.randn(2, 16, 16))
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        block = N3Block2d(2, k=1, temperature="scalar", **SMALL)
        with torch.no_grad():
            block.selector.log_temperature.fill_(1e4)  # exp overflows to inf
        block(x)
    with pytest.raises(ValueError, match="x must have 2 channels"):
        N3Block2d(2, k=1, **SMALL).combiner(torch.randn(1, 3, 16, 16), None)
    with pytest.raises(ValueError, match="patch_size"):
        Patches.of(0, 1)


@pytest.mark.parametrize("hard", [False, True])
def test_n3_selection_does_not_depend_on_block_size(hard):
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    weights = []
    for block_size in (1, 5, 1024):
        sel = N3(2, patch_size=4, stride=2, window=8, hard=hard, block_size=block_size).double()
        nbhd = sel(x)
        weights.append(nbhd.index if hard else nbhd.weight)
    for w in weights[1:]:
        # hard picks are identical; soft weights agree to round-off (BLAS blocks the matmuls differently)
        torch.testing.assert_close(w, weights[0], rtol=0, atol=0 if hard else 1e-12)
