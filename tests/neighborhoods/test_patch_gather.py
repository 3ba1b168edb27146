"""Patches.unfold on small images (one index_select of the pixels) equals F.unfold's im2col.

Two computations of the same patches: the gather route against ``F.unfold`` (the route above
``GATHER_MAX_PIXELS``, forced here by setting it to 0). The forward copies the same entries, so
it is compared bitwise; the backward sums a pixel's patch gradients in another order (index_add
vs col2im), so gradients are compared to 1e-6 (float32) and 1e-12 (float64), relative to the
largest gradient.
"""

import pytest
import torch
import torch.nn.functional as F

import neighborhoods.functional.patches as patches_module
from neighborhoods.functional.patches import Patches

# (B, C, H, W, patch, stride): the N3 ablation's 2x2/1 on 4x4 and 8x8, padding (7x6 with 3/2),
# non-square patches and strides, 1x1 patches, an image smaller than its patch, an empty batch
SHAPES = [(32, 8, 4, 4, (2, 2), (1, 1)), (4, 3, 8, 8, (2, 2), (1, 1)), (3, 4, 7, 6, (3, 3), (2, 2)),
          (2, 5, 5, 9, (2, 3), (1, 2)), (2, 3, 6, 6, (1, 1), (1, 1)), (2, 2, 2, 3, (4, 4), (1, 1)),
          (0, 3, 4, 4, (2, 2), (1, 1)), (2, 2, 16, 16, (4, 4), (4, 4))]
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def unfold_both(patches, x, monkeypatch):
    gathered = patches.unfold(x)
    with monkeypatch.context() as m:
        m.setattr(patches_module, "GATHER_MAX_PIXELS", 0)
        plain = patches.unfold(x)
    return gathered, plain


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gathered_patches_equal_f_unfold(shape, dtype, seed, monkeypatch):
    b, c, h, w, patch, stride = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype, requires_grad=True)
    p = Patches.of(patch, stride)
    gathered, plain = unfold_both(p, x, monkeypatch)
    assert gathered.shape == plain.shape
    assert torch.equal(gathered, plain)  # copies of the same entries
    up = torch.randn(gathered.shape, generator=g, dtype=dtype)
    (grad_gathered,) = torch.autograd.grad(gathered, x, up)
    (grad_plain,) = torch.autograd.grad(plain, x, up)
    scale = max(grad_plain.abs().max().item(), 1.0) if grad_plain.numel() else 1.0
    torch.testing.assert_close(grad_gathered, grad_plain, rtol=0, atol=TOL[dtype] * scale)


def test_gathered_patches_pass_gradcheck():
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    p = Patches.of(2, 1)
    assert torch.autograd.gradcheck(p.unfold, (x,))
    assert torch.autograd.gradgradcheck(p.unfold, (x,))


@pytest.mark.parametrize("side, gathers", [(4, True), (16, True), (17, False), (32, False)])
def test_the_gather_route_is_taken_on_small_images_only(side, gathers, monkeypatch):
    calls = []
    real = F.unfold
    monkeypatch.setattr(patches_module.F, "unfold", lambda *a, **kw: calls.append(a[0].shape) or real(*a, **kw))
    patches_module._patch_pixels.cache_clear()
    Patches.of(2, 1).unfold(torch.randn(2, 3, side, side))
    # the gather route calls F.unfold once, on the (1, 1, H, W) pixel ids, to build its index
    assert [tuple(s) for s in calls] == ([(1, 1, side, side)] if gathers else [(2, 3, side, side)])
