"""block_fold is F.fold for patches a multiple of their stride: the same bits, the same gradients.

The sub-block additions run in col2im's own order (patch offsets ascending onto a zero image),
so values are compared bitwise; the backward is an im2col copy of the gradient, also exact.
Second derivatives are checked with gradgradcheck in float64.
"""

import pytest
import torch
import torch.nn.functional as F

from neighborhoods.functional import Patches
from neighborhoods.functional.fold import MIN_STRIDE, block_fold, block_foldable

# (channels, patch_size, stride, image size): the paper's 10x10 / 5 setting, rectangular patches,
# r = 3 sub-blocks, and an image the patches overhang by less than a stride (F.fold leaves it 0)
CASES = [
    (3, (10, 10), (5, 5), (40, 35)),
    (2, (8, 4), (4, 4), (20, 16)),
    (1, (12, 8), (4, 4), (24, 28)),
    (2, (4, 4), (4, 4), (12, 13)),
]


def _grid(size, patch, stride):
    return tuple((n - p) // s + 1 for n, p, s in zip(size, patch, stride))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels, patch, stride, size", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_bits_and_gradients_as_fold(channels, patch, stride, size, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    gh, gw = _grid(size, patch, stride)
    items = torch.randn(2, gh * gw, channels * patch[0] * patch[1], generator=g, dtype=dtype, requires_grad=True)
    ref_items = items.detach().clone().requires_grad_()
    out = block_fold(items, size, patch, stride)
    ref = F.fold(ref_items.transpose(1, 2), size, patch, stride=stride)
    assert torch.equal(out, ref)
    weight = torch.randn(ref.shape, generator=g, dtype=dtype)
    (out * weight).sum().backward()
    (ref * weight).sum().backward()
    assert torch.equal(items.grad, ref_items.grad)


@pytest.mark.parametrize("patch, stride, size", [((4, 4), (4, 4), (8, 9)), ((8, 4), (4, 4), (12, 8))])
def test_second_derivatives(patch, stride, size):
    gh, gw = _grid(size, patch, stride)
    items = torch.randn(1, gh * gw, patch[0] * patch[1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: block_fold(t, size, patch, stride), (items,))
    assert torch.autograd.gradgradcheck(lambda t: block_fold(t, size, patch, stride) ** 2, (items,))


def test_foldable_only_for_multiples_of_strides_at_least_the_minimum():
    assert block_foldable((10, 10), (5, 5))
    assert not block_foldable((10, 10), (4, 5))  # 10 is not a multiple of 4
    assert not block_foldable((2, 2), (1, 1))  # short runs: col2im is faster there
    assert block_foldable((2 * MIN_STRIDE,) * 2, (MIN_STRIDE,) * 2)
    assert not block_foldable((2 * MIN_STRIDE - 2,) * 2, (MIN_STRIDE - 1,) * 2)


def test_wrong_number_of_items_names_the_grid():
    with pytest.raises(ValueError, match=r"one row per patch of a \(3, 3\) grid"):
        block_fold(torch.zeros(1, 8, 100), (20, 20), (10, 10), (5, 5))


@pytest.mark.parametrize("size", [(80, 80), (37, 52)])
def test_patches_fold_takes_the_block_route_with_the_same_result(size, monkeypatch):
    # Patches.fold pads to tile, folds and averages; through block_fold and through F.fold alike
    import neighborhoods.functional.patches as patches_module

    calls = []

    def spy(*args, **kwargs):
        calls.append(args[1:])
        return block_fold(*args, **kwargs)

    monkeypatch.setattr(patches_module, "block_fold", spy)
    patches = Patches.of(10, 5)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    items = patches.unfold(x)
    padded = patches.padded(size)
    (top, _), (left, _) = patches.pads(size)
    cols = items.transpose(1, 2)
    count = F.fold(torch.ones_like(cols), padded, 10, stride=5)
    ref = (F.fold(cols, padded, 10, stride=5) / count)[..., top:top + size[0], left:left + size[1]]
    assert torch.equal(patches.fold(items, size), ref)
    assert calls == [(padded, (10, 10), (5, 5))]  # the block route, on the padded image
    calls.clear()
    Patches.of(2, 1).fold(Patches.of(2, 1).unfold(x), size)
    assert calls == []  # stride 1: F.fold
    torch.testing.assert_close(patches.fold(items, size), x, atol=1e-12, rtol=0)  # fold(unfold) averages back to x
