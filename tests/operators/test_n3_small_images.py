"""N3 on images its patches do not tile: zero-pad to the patch grid, crop back; windows wider than the image."""

import pytest
import torch
import torch.nn.functional as F

import operators
from neighborhoods import NeighborAggregator
from neighborhoods.combiners import Projection
from neighborhoods.functional import Patches
from neighborhoods.selectors import N3
from operators import KNNBlock2d, N3Block2d


@pytest.mark.parametrize("size, patch, stride", [((8, 8), 10, 5), ((32, 32), 10, 5), ((13, 11), 4, 3),
                                                 ((7, 9), (3, 2), (2, 2)), ((12, 12), 4, 2)])
def test_patches_pad_to_the_grid_and_fold_crops_back(size, patch, stride):
    p = Patches.of(patch, stride)
    (top, bottom), (left, right) = p.pads(size)
    padded = (size[0] + top + bottom, size[1] + left + right)
    for n, m, k, s in zip(padded, size, p.patch_size, p.stride):
        assert n >= k and (n - k) % s == 0  # the patches tile the padded image
        assert 0 <= n - max(m, k) < s  # and it is the smallest such size
    assert 0 <= bottom - top <= 1 and 0 <= right - left <= 1  # floor before, ceil after
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    items = p.unfold(x)
    assert items.shape[1] == p.grid(size)[0] * p.grid(size)[1]
    # every pixel lies in some patch, so col2im's average of im2col gives the image back exactly
    torch.testing.assert_close(p.fold(items, size), x, rtol=0, atol=1e-12)


def _pad_run_crop(block, x):
    """The block run on an image already padded (by hand) to its patch grid, then cropped."""
    (top, bottom), (left, right) = block.selector.patches.pads(tuple(x.shape[2:]))
    y = block(F.pad(x, (left, right, top, bottom)))
    return y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]


@pytest.mark.parametrize("size", [(13, 11), (8, 8), (10, 7)])
@pytest.mark.parametrize("project", [False, True])
def test_knn_block_pad_and_crop_equals_running_on_the_padded_image(size, project):
    # no embedding network: padding x first or padding inside the block is the same computation
    g = torch.Generator().manual_seed(0)
    block = KNNBlock2d(2, k=3, patch_size=4, patch_stride=3, window=10, project=project, dtype=torch.float64)
    x = torch.randn(2, 2, *size, generator=g, dtype=torch.float64, requires_grad=True)
    y = block(x)
    assert y.shape == (2, 2 if project else 8, *size)
    torch.testing.assert_close(y, _pad_run_crop(block, x), rtol=0, atol=1e-12)
    grad, expected = (torch.autograd.grad(f(block, x).square().sum(), x)[0]
                      for f in (lambda b, x: b(x), _pad_run_crop))
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_soft_n3_pad_and_crop_equals_running_on_the_padded_image(dtype, tol):
    # the continuous selection on the input's own patches (no embedding or temperature networks)
    sel = N3(2, temp_bias=0.7, patch_size=3, stride=2, window=7, dtype=dtype)
    layer = NeighborAggregator(sel, Projection(3, 2, None, True, sel.patches, dtype=dtype))
    for seed, size in enumerate([(10, 9), (6, 6), (12, 5)]):
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        torch.testing.assert_close(layer(x), _pad_run_crop(layer, x), rtol=0, atol=tol)


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_default_n3_block_runs_on_small_images(size):
    block = operators.create("n3_block2d", in_channels=3)
    x = torch.randn(1, 3, size, size)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_window_wider_than_the_image_searches_all_of_it():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)  # 35x35 padded: a 6x6 patch grid, the window is 15x15
    block = N3Block2d(3, k=3, embed_channels=4, hidden_channels=8, dtype=torch.float64).eval()
    everywhere = N3Block2d(3, k=3, embed_channels=4, hidden_channels=8, window=None, dtype=torch.float64).eval()
    everywhere.load_state_dict(block.state_dict())
    assert block.neighborhood(x).index.shape == (36, 35)
    # two code paths (a clipped window vs the whole grid): float64 round-off, not bit equality
    torch.testing.assert_close(block(x), everywhere(x), rtol=0, atol=1e-12)


def test_default_n3_block_on_8x8_says_why_and_presets_work():
    # 10x10 patches on an 8x8 image: one patch, nothing to select; the presets are sized for it
    with pytest.raises(ValueError, match="holds only the query itself"):
        operators.create("n3_block2d", in_channels=1)(torch.randn(1, 1, 8, 8))
    for name, size in [("n3_block2d_digits", 8), ("n3_block2d_cifar", 32), ("n3_block2d_digits", 28)]:
        block = operators.create(name, in_channels=3)
        y = block(torch.randn(2, 3, size, size))
        assert y.shape == (2, 3, size, size) and torch.isfinite(y).all()
        assert block.neighborhood(torch.randn(1, 3, size, size)).index.shape[1] >= block.selector.k


def test_query_map_on_a_padded_image_keeps_the_mass_on_the_image():
    # patches hanging over the zero border pass their whole weight to their pixels inside the image
    block = KNNBlock2d(2, k=3, patch_size=4, patch_stride=3, window=10, dtype=torch.float64)
    x = torch.randn(1, 2, 13, 11, dtype=torch.float64)  # padded to 13x13: a 4x4 patch grid starting at (0, -1)
    nbhd = block.neighborhood(x)
    for q in range(nbhd.num_queries):
        m = nbhd.query_map(q)
        assert m.shape == (13, 11) and torch.isfinite(m).all() and (m >= 0).all()
        torch.testing.assert_close(m.sum().double(), torch.tensor(3.0, dtype=torch.float64), rtol=0, atol=1e-6)
    # the first query's patch is rows 0-3, columns -1..2: its centre is pixel (1.5, 0.5)
    assert nbhd.query_at((1, 0)) == 0
