"""N3 on tiny images: the pixel-matrix volumes, the combiner's projection of them and the dense distances are the general routes' function.

Each case runs one N3 block twice on the same input and parameters, once with the small-grid
routes (the default where the size rule picks them) and once with them switched off, and
compares outputs and the gradients of the input and every parameter: float64 to 1e-12,
float32 to 1e-5 (gradients 1e-4, see GRAD_TOL), relative to each tensor's largest entry.
The block is the one the digits ablation builds (2x2 patches every pixel, a 4-pixel window, k = 3), on the ablation's 4x4 maps,
odd sizes that pad, and with the other options of the combiner (relative volumes, no projection).
"""

import sys

import pytest
import torch

import operators
from neighborhoods.functional.patches import Patches, window_candidates
from neighborhoods.functional.small_grid import PIXEL_MATRIX_ELEMENTS, pixel_projection, pixel_volumes, use_pixel_matrix

projection = sys.modules["neighborhoods.combiners.projection"]
candidates = sys.modules["neighborhoods.functional.candidates"]

ABLATION = dict(k=3, patch_size=2, patch_stride=1, window=4, embed_channels=8, hidden_channels=8, depth=2,
                relative=False)
# (block kwargs, input shape): the ablation's 4x4 maps at two widths, 5x5 / 6x6 / 3x5 maps (3x3 patches
# every 2 pixels pad them), relative volumes, the concatenation itself, the query kept among its candidates
CASES = [
    (dict(ABLATION, in_channels=8, out_channels=16), (4, 8, 4, 4)),
    (dict(ABLATION, in_channels=32, out_channels=32), (3, 32, 4, 4)),
    (dict(ABLATION, in_channels=3), (2, 3, 5, 5)),
    (dict(ABLATION, in_channels=4, relative=True, out_channels=None, project=False), (2, 4, 6, 6)),
    (dict(ABLATION, in_channels=5, relative=True, out_channels=7), (3, 5, 4, 4)),
    (dict(ABLATION, in_channels=2, exclude_self=False, update="logits"), (2, 2, 3, 5)),
    (dict(k=2, patch_size=3, patch_stride=2, window=5, embed_channels=4, hidden_channels=4, depth=2,
          in_channels=3, temperature="scalar"), (2, 3, 6, 5)),
]
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
#: float32 gradients: 1e-4. The embedding and temperature networks' gradients pass back through
#: train-mode batch norm, whose backward subtracts batch means, so the round-off of the two routes'
#: summation orders (1e-7) comes out at up to ~1e-5 of the largest entry; float64 at 1e-12 carries the claim
GRAD_TOL = {torch.float64: 1e-12, torch.float32: 1e-4}


def _run(block, x, small):
    use, cells, dense = projection.use_pixel_matrix, projection.use_cells, candidates.DENSE_ELEMENTS
    if not small:  # the patch route itself (not the stride-cell route, tested in test_cell_volumes.py)
        projection.use_pixel_matrix = projection.use_cells = lambda *args: False
        candidates.DENSE_ELEMENTS = 0
    try:
        x = x.detach().clone().requires_grad_()
        y = block(x)
        weight = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
        grads = torch.autograd.grad((y * weight).sum() + y.square().sum(), [x, *block.parameters()])
        return [y.detach(), *grads]
    finally:
        projection.use_pixel_matrix, projection.use_cells, candidates.DENSE_ELEMENTS = use, cells, dense


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kwargs, shape", CASES)
def test_small_grid_routes_match_the_general_ones(kwargs, shape, seed, dtype):
    torch.manual_seed(seed)
    block = operators.create("n3block2d", **kwargs).to(dtype)
    x = torch.randn(shape, dtype=dtype)
    index = block.selector.candidates(shape[2:], x.device)[0]
    assert use_pixel_matrix(x, index, block.combiner.patches)  # the cases are small: the route is taken
    fast, general = _run(block, x, True), _run(block, x, False)
    # relative to each tensor's largest entry, floored at 1% of the largest gradient: a bias followed by
    # batch norm has a gradient that is 0 up to round-off, so relative to itself it is noise
    floor = 0.01 * max(g.abs().max() for g in general[1:])
    for name, a, b in zip(["output", "x", *(n for n, _ in block.named_parameters())], fast, general):
        scale = b.abs().max() if name == "output" else torch.maximum(b.abs().max(), floor)
        assert (a - b).abs().max() <= (TOL if name == "output" else GRAD_TOL)[dtype] * scale, name


@pytest.mark.parametrize("shape, patch, stride, window", [((1, 2, 4, 4), 2, 1, (3, 3)), ((1, 1, 3, 4), 2, 2, None)])
def test_pixel_volumes_gradcheck(shape, patch, stride, window):
    patches = Patches.of(patch, stride)
    grid = patches.grid(shape[2:])
    index = window_candidates(grid, window)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(shape[0], index.shape[0], index.shape[1], 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: pixel_volumes(x, w, index, patches), (x, weight))
    assert torch.autograd.gradgradcheck(lambda x, w: pixel_volumes(x, w, index, patches), (x, weight))


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shape, patch, stride, window", [((2, 3, 4, 4), 2, 1, (3, 3)), ((1, 2, 3, 5), 2, 2, None)])
def test_pixel_projection_is_the_projected_concatenation(shape, patch, stride, window, bias, relative):
    """Against an independent computation: the volumes, the concatenation and the 1x1 projection as einsums."""
    torch.manual_seed(len(shape) + patch + int(bias) + 2 * int(relative))
    patches = Patches.of(patch, stride)
    index = window_candidates(patches.grid(shape[2:]), window)
    s, c, out = 2, shape[1], 4
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(shape[0], index.shape[0], index.shape[1], s, dtype=torch.float64, requires_grad=True)
    p = torch.randn(out, (s + 1) * c, dtype=torch.float64, requires_grad=True)
    b = torch.randn(out, dtype=torch.float64, requires_grad=True) if bias else None

    def reference(x, weight, p, b):
        vol = pixel_volumes(x, weight, index, patches)  # (B, S, C, H, W), itself tested against im2col/col2im
        if relative:
            vol = vol - x.unsqueeze(1)
        cat = torch.cat([x, vol.flatten(1, 2)], 1)
        y = torch.einsum("oi,bihw->bohw", p, cat)
        return y if b is None else y + b.view(1, -1, 1, 1)

    def fused(x, weight, p, b):
        return pixel_projection(x, weight, index, patches, p, b, relative)

    args = (x, weight, p) + ((b,) if bias else ())
    ref = (lambda *a: reference(*a, None)) if not bias else reference
    fus = (lambda *a: fused(*a, None)) if not bias else fused
    assert torch.allclose(fus(*args), ref(*args), rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(fus, args)
    assert torch.autograd.gradgradcheck(fus, args)
    # float32: the same function to round-off, gradients too
    args32 = [a.detach().float().requires_grad_() for a in args]
    y, y_ref = fus(*args32), ref(*args32)
    assert (y - y_ref).abs().max() <= 1e-5 * y_ref.abs().max()
    g = torch.randn_like(y)
    for a, r in zip(torch.autograd.grad(y, args32, g), torch.autograd.grad(y_ref, args32, g)):
        assert (a - r).abs().max() <= 1e-5 * r.abs().max()


def test_pixel_projection_skipped_when_the_projection_is_hooked(monkeypatch):
    calls = _spy(monkeypatch)
    block = operators.create("n3block2d", **dict(ABLATION, in_channels=3, out_channels=4))
    x = torch.randn(2, 3, 4, 4)
    plain = block(x)
    seen = []
    handle = block.combiner.project.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        hooked = block(x)
    finally:
        handle.remove()
    assert calls == {"volumes": 1, "projection": 1}  # the hooked call went through the module
    assert seen == [torch.Size([2, 4, 4, 4])]
    assert torch.allclose(plain, hooked, atol=1e-6)


def test_block_gradcheck_on_a_tiny_image():
    torch.manual_seed(0)
    block = operators.create("n3block2d", **dict(ABLATION, in_channels=2, out_channels=2)).double()
    block.eval()  # batch norm from running statistics: a function of x alone
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def _spy(monkeypatch):
    calls = {"volumes": 0, "projection": 0}
    for name, key in (("pixel_volumes", "volumes"), ("pixel_projection", "projection")):
        real = getattr(projection, name)

        def spy(*args, real=real, key=key):
            calls[key] += 1
            return real(*args)

        monkeypatch.setattr(projection, name, spy)
    return calls


def test_route_taken_on_a_small_grid_and_not_on_a_large_one(monkeypatch):
    calls = _spy(monkeypatch)
    block = operators.create("n3block2d", **dict(ABLATION, in_channels=3))
    block(torch.randn(2, 3, 4, 4))
    assert calls == {"volumes": 0, "projection": 1}  # projected: the volumes are never materialised
    block.combiner.project = None  # the concatenation itself: the volumes' route
    block.combiner.out_channels = block.combiner.in_channels * (block.combiner.num_slots + 1)
    block(torch.randn(2, 3, 4, 4))
    assert calls == {"volumes": 1, "projection": 1}
    large = torch.randn(1, 3, 12, 12)  # 121 items x 8 candidates x 144^2 pixel pairs > the rule
    index = block.selector.candidates(large.shape[2:], large.device)[0]
    assert index.shape[0] * index.shape[1] * 144 ** 2 > PIXEL_MATRIX_ELEMENTS
    assert not use_pixel_matrix(large, index, block.combiner.patches)
    block(large)
    assert calls == {"volumes": 1, "projection": 1}


def test_dense_distances_only_for_one_small_block(monkeypatch):
    index = window_candidates((3, 3), (3, 3))
    e = torch.randn(2, 9, 4, dtype=torch.float64)
    dense = candidates.candidate_sq_distances(e, index)
    assert dense.grad_fn is None or "CandidateSqDistances" not in type(dense.grad_fn).__name__
    e.requires_grad_()
    assert "CandidateSqDistances" not in type(candidates.candidate_sq_distances(e, index).grad_fn).__name__
    # several blocks asked for, or too many items: the blocked kernel
    assert "CandidateSqDistances" in type(candidates.candidate_sq_distances(e, index, block_size=4).grad_fn).__name__
    monkeypatch.setattr(candidates, "DENSE_ELEMENTS", 2 * 9 * 9 - 1)
    assert "CandidateSqDistances" in type(candidates.candidate_sq_distances(e, index).grad_fn).__name__
    assert torch.allclose(dense, candidates.candidate_sq_distances_gathered(e.detach(), index), atol=1e-12)
