"""N3's volumes over stride cells are the patch route's function; the split projection is the concatenation's.

Three claims, each checked against an independent computation on random inputs, several
shapes and seeds, float64 and float32, with gradients:

- ``cell_volumes`` against the patch route written out here (im2col with ``F.unfold`` after
  zero padding, the gathered candidate sums, col2im with ``F.fold`` divided by the overlap
  count, cropped): outputs and the gradients of the image and the weights, float64 to 1e-12
  and float32 to 1e-5 of each tensor's largest entry; gradcheck and gradgradcheck in float64.
- A whole N3 block with the cell route against the same block with it switched off (and the
  concatenated projection against the split one), outputs and every parameter's gradient.
- ``exp_flushed`` against ``torch.exp``: the same values where ``exp(x) >= 2 tiny``, 0 below.
"""

import math
import sys

import pytest
import torch
import torch.nn.functional as F

import operators
from neighborhoods.combiners import Projection
from neighborhoods.functional.candidates import candidate_sum_gathered
from neighborhoods.functional.cell_volumes import _routing, cell_volumes, cells_per_patch, use_cells
from neighborhoods.functional.continuous_knn import exp_flushed
from neighborhoods.functional.patches import Patches, window_candidates
from neighborhoods.neighborhood import Neighborhood

projection = sys.modules["neighborhoods.combiners.projection"]

TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
#: float32 gradients of whole blocks: 1e-4 of the largest entry (train-mode batch norm's backward
#: subtracts batch means, so the routes' 1e-7 summation differences reach ~1e-5 there); float64 1e-12
GRAD_TOL = {torch.float64: 1e-12, torch.float32: 1e-4}


def patch_route(x, weight, index, patches):
    """The volumes as im2col, gathered candidate sums and col2im averaging overlaps, by torch's own ops."""
    b, c, h, w = x.shape
    (top, bottom), (left, right) = patches.pads((h, w))
    padded = F.pad(x, (left, right, top, bottom))
    size = tuple(padded.shape[2:])
    items = F.unfold(padded, patches.patch_size, stride=patches.stride).transpose(1, 2)  # (b, q, c p p)
    sums = candidate_sum_gathered(items, index, weight)  # (b, q, s, c p p)
    s = weight.shape[-1]
    cols = sums.permute(0, 2, 3, 1).reshape(b, s * c * patches.area, -1)
    total = F.fold(cols, size, patches.patch_size, stride=patches.stride)
    ones = torch.ones(1, patches.area, index.shape[0], dtype=x.dtype)
    out = total / F.fold(ones, size, patches.patch_size, stride=patches.stride)
    return out[..., top:size[0] - bottom, left:size[1] - right].unflatten(1, (s, c))


# (image, patch, stride, window in patch positions or None, exclude_self, slots, block_size)
CASES = [
    ((20, 20), 10, 5, (3, 3), True, 3, None),  # the paper's patches, tiling
    ((23, 17), (4, 6), 2, (5, 3), True, 2, None),  # rectangular patches (2 x 3 cells), padded
    ((12, 12), 6, 2, None, True, 2, 5),  # every patch a candidate; 3 x 3 cells; small blocks
    ((9, 9), 3, 1, (3, 3), False, 2, None),  # stride 1: cells are pixels; the query kept
    ((7, 11), 4, (2, 1), (2, 4), True, 1, 3),  # per-axis strides, padded, one slot
    ((40, 35), 10, 5, (5, 5), True, 3, None),  # a window narrower than the grid: one row of cells per block
]


def _case(case, dtype, seed):
    size, patch, stride, window, exclude_self, slots, block = case
    torch.manual_seed(seed)
    patches = Patches.of(patch, stride)
    grid = patches.grid(size)
    window = None if window is None else tuple(min(w, g) for w, g in zip(window, grid))
    index = window_candidates(grid, window, exclude_self=exclude_self)
    x = torch.randn(2, 3, *size, dtype=dtype)
    weight = torch.rand(2, *index.shape, slots, dtype=dtype)
    weight[weight < 0.2] = 0.0  # exact zeros among the weights, as a softmax's underflow gives
    return patches, index, x, weight, block


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", CASES)
def test_cell_volumes_match_the_patch_route(case, seed, dtype):
    patches, index, x, weight, block = _case(case, dtype, seed)
    x.requires_grad_()
    weight.requires_grad_()
    ours = cell_volumes(x, weight, index, patches, block)
    ref = patch_route(x, weight, index, patches)
    assert ours.shape == ref.shape == (x.shape[0], weight.shape[-1], *x.shape[1:])
    grad = torch.randn_like(ref)
    g_ours = torch.autograd.grad(ours, [x, weight], grad)
    g_ref = torch.autograd.grad(ref, [x, weight], grad)
    for a, b in zip([ours, *g_ours], [ref, *g_ref]):
        assert (a - b).abs().max() <= TOL[dtype] * b.abs().max()


#: small enough for gradcheck's numerical Jacobians: 2 x 3 cells padded, stride 1, per-axis strides
GRADCHECK = [((7, 9), (4, 6), 2, (2, 2), True, 2, None), ((5, 5), 3, 1, (3, 3), False, 1, None),
             ((6, 7), 4, (2, 1), (2, 3), True, 1, 2)]


@pytest.mark.parametrize("case", GRADCHECK)
def test_cell_volumes_gradcheck(case):
    patches, index, x, weight, block = _case(case, torch.float64, 0)
    x = x[:1, :1].clone().requires_grad_()
    weight = weight[:1].clone().requires_grad_()
    fn = lambda x, w: cell_volumes(x, w, index, patches, block)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, weight))
    assert torch.autograd.gradgradcheck(fn, (x, weight))


@pytest.mark.parametrize("case", CASES)
def test_routing_is_the_patches_cover(case):
    """Cell rows list distinct cells; each (a, q, m) lands on its own entry; 1 / cnt is col2im's overlap count."""
    patches, index, x, _, _ = _case(case, torch.float64, 0)
    grid, r = patches.grid(x.shape[2:]), cells_per_patch(patches)
    cell_index, route, inv_cover = _routing(grid, r, index.numpy().tobytes(), tuple(index.shape))
    n_cells = (grid[0] + r[0] - 1) * (grid[1] + r[1] - 1)
    assert cell_index.shape[0] == n_cells and route.shape == (r[0] * r[1], index.numel())
    for a in range(route.shape[0]):  # injective for a fixed place a: q + a and index[q, m] + a fix (q, m)
        assert route[a].unique().numel() == route.shape[1]
    used = torch.zeros(cell_index.numel(), dtype=torch.bool)
    used[route.flatten()] = True
    for row, hit in zip(cell_index, used.view_as(cell_index)):
        assert row[hit].unique().numel() == int(hit.sum())  # routed entries of a row: distinct cells
    padded = patches.padded(tuple(x.shape[2:]))
    ones = torch.ones(1, patches.area, index.shape[0], dtype=torch.float64)
    count = F.fold(ones, padded, patches.patch_size, stride=patches.stride)[0, 0]
    per_cell = count[:: patches.stride[0], :: patches.stride[1]].flatten()
    torch.testing.assert_close(inv_cover, per_cell.reciprocal(), rtol=0, atol=0)


def test_cell_volumes_refuse_other_patches():
    x = torch.randn(1, 1, 9, 9)
    for patch, stride in [(3, 2), (4, 4)]:  # not whole cells; cells that do not overlap
        patches = Patches.of(patch, stride)
        index = window_candidates(patches.grid((9, 9)), None)
        assert cells_per_patch(patches) is None and not use_cells(x, index, patches)
        with pytest.raises(ValueError, match="cell_volumes needs patch sides"):
            cell_volumes(x, torch.rand(1, *index.shape, 1), index, patches)
    patches = Patches.of(4, 2)
    index = window_candidates(patches.grid((9, 9)), None)
    with pytest.raises(ValueError, match=r"index \(Nq, M\) and weight"):
        cell_volumes(x, torch.rand(1, 3, index.shape[1], 1), index, patches)


def test_cell_volumes_stay_out_of_transforms():
    patches = Patches.of(4, 2)
    x = torch.randn(2, 1, 8, 8)
    index = window_candidates(patches.grid((8, 8)), None)
    assert use_cells(x, index, patches)
    seen = []
    torch.func.vmap(lambda t: seen.append(use_cells(t.unsqueeze(0), index, patches)) or t)(x)
    assert seen == [False]


# whole blocks: the paper's setting scaled down, the CIFAR preset, stride-1 patches, cross matching
BLOCKS = [
    (dict(k=3, patch_size=10, patch_stride=5, window=20, hidden_channels=8, embed_channels=4), (2, 4, 30, 25)),
    (dict(k=2, patch_size=4, patch_stride=2, window=8, hidden_channels=8, embed_channels=4, relative=False),
     (2, 3, 16, 16)),
    (dict(k=2, patch_size=3, patch_stride=1, window=5, hidden_channels=4, embed_channels=4, update="logits",
          project=False), (2, 2, 16, 16)),
]


def _run_block(block, x, cells, database=None):
    use = projection.use_cells
    if not cells:
        projection.use_cells = lambda *args: False
    try:
        x = x.detach().clone().requires_grad_()
        y = block(x) if database is None else block(x, database=database)
        weight = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
        grads = torch.autograd.grad((y * weight).sum() + y.square().sum(), [x, *block.parameters()])
        return [y.detach(), *grads]
    finally:
        projection.use_cells = use


def _assert_same(block, fast, general, dtype):
    # gradients relative to each tensor's largest entry, floored at 1% of the largest gradient: a bias
    # followed by batch norm has a gradient that is 0 up to round-off, so relative to itself it is noise
    floor = 0.01 * max(g.abs().max() for g in general[1:])
    for name, a, b in zip(["output", "x", *(n for n, _ in block.named_parameters())], fast, general):
        scale = b.abs().max() if name == "output" else torch.maximum(b.abs().max(), floor)
        assert (a - b).abs().max() <= (TOL if name == "output" else GRAD_TOL)[dtype] * scale, name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs, shape", BLOCKS)
def test_n3_block_with_cells_matches_the_patch_route(kwargs, shape, seed, dtype, monkeypatch):
    torch.manual_seed(seed)
    block = operators.create("n3block2d", in_channels=shape[1], **kwargs).to(dtype)
    x = torch.randn(shape, dtype=dtype)
    calls = []
    original = projection.cell_volumes
    monkeypatch.setattr(projection, "cell_volumes", lambda *a, **k: calls.append(1) or original(*a, **k))
    fast = _run_block(block, x, True)
    assert calls  # the route was taken
    _assert_same(block, fast, _run_block(block, x, False), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cross_matching_with_cells_matches_the_patch_route(dtype):
    torch.manual_seed(3)
    kwargs, shape = BLOCKS[0]
    block = operators.create("n3block2d", in_channels=shape[1], **kwargs).to(dtype)
    x, database = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    _assert_same(block, _run_block(block, x, True, database), _run_block(block, x, False, database), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_split_projection_matches_the_concatenation(relative, bias, dtype, monkeypatch):
    torch.manual_seed(int(relative) + 2 * int(bias))
    comb = Projection(5, 3, out_channels=6, relative=relative, bias=bias, dtype=dtype)
    x = torch.randn(2, 5, 9, 8, dtype=dtype, requires_grad=True)
    nbhd = Neighborhood(num_keys=72, query_shape=(9, 8), index=torch.randint(0, 72, (72, 4)),
                        weight=torch.rand(2, 72, 4, 3, dtype=dtype))
    assert comb._split_projection(x)
    outs = []
    for split in (True, False):
        if not split:
            monkeypatch.setattr(Projection, "_split_projection", lambda self, x: False)
        y = comb(x, nbhd)
        outs.append([y, *torch.autograd.grad(y.square().sum(), [x, *comb.parameters()])])
    for a, b in zip(*outs):
        assert (a - b).abs().max() <= TOL[dtype] * b.abs().max()


def test_split_projection_keeps_hooks_and_small_inputs_on_the_concatenation():
    comb = Projection(2, 1, out_channels=2)
    x = torch.randn(1, 2, 8, 8)
    assert comb._split_projection(x)
    assert not comb._split_projection(x[..., :4, :4])  # 16 positions: ChannelLinear's own small route
    seen = []
    handle = comb.project.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape))
    assert not comb._split_projection(x)
    nbhd = Neighborhood(num_keys=64, query_shape=(8, 8), index=torch.randint(0, 64, (64, 2)),
                        weight=torch.rand(1, 64, 2, 1))
    comb(x, nbhd)
    assert seen == [torch.Size([1, 4, 8, 8])]  # the hook saw the concatenation
    handle.remove()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_flushed_is_exp_above_four_tiny(dtype):
    tiny = torch.finfo(dtype).tiny
    x = torch.cat([torch.linspace(math.log(tiny) - 30, 5, 4001, dtype=dtype),
                   torch.tensor([math.log(2 * tiny), float("-inf"), float("nan"), 0.0], dtype=dtype)])
    ours, ref = exp_flushed(x), torch.exp(x)
    keep = ref > 4 * tiny
    assert torch.equal(ours[keep], ref[keep])
    assert torch.all(ours[~keep & ~torch.isnan(x)] == 0)
    assert torch.isnan(ours[-2]) and ours[-3] == 0 and ours[-1] == 1
    x.requires_grad_()
    (g,) = torch.autograd.grad(exp_flushed(x).sum(), x)
    finite = ~torch.isnan(x.detach())
    assert torch.equal(g[keep], ref[keep]) and torch.all(g[~keep & finite] == 0)
