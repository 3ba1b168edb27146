"""N3 cross matching (queries from x, candidates from a database tensor) and ``exclude_self=False``.

The authors' ``N3Aggregation2D(x, xe, ye, y)`` matches the query image ``y``'s patches against the
database image ``x``'s, in the same window around the query's position (their index excludes the
database patch at the query's own position), and concatenates ``[y, z - y]``. The references here
are written with torch ops and loops, independently of the library's selector and combiner.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from neighborhoods.functional import window_candidates
from neighborhoods.functional.candidates import candidate_sq_distances_gathered
from neighborhoods.selectors import N3
from operators import KNNBlock2d, N3Block1d, N3Block2d

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
SMALL = dict(patch_size=4, patch_stride=2, window=8, embed_channels=3, hidden_channels=4)


def _knn_weights(scores, k, t):
    """Ploetz & Roth 2018, Eqs. 8-10 written out: w_1 = softmax(s / t); s <- s + log(1 - w), k times."""
    out, s = [], scores
    for _ in range(k):
        w = torch.softmax(s / t, -1)
        out.append(w)
        s = s + torch.log1p(-w)
    return torch.stack(out, -1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("exclude_self", [True, False])
@pytest.mark.parametrize("seed, shape", [(0, (2, 3, 12, 12)), (1, (1, 3, 13, 10)), (2, (3, 3, 8, 14))])
def test_cross_matching_a_tensor_with_itself_is_self_matching(seed, shape, exclude_self, dtype):
    torch.manual_seed(seed)
    block = N3Block2d(3, k=2, exclude_self=exclude_self, dtype=dtype, **SMALL).eval()
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    out, ref = block(x, database=x), block(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=0, atol=TOL[dtype] * 10)  # sums over both roles of x, in another order


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("exclude_self", [True, False])
@pytest.mark.parametrize("seed, n", [(0, 7), (1, 10)])
def test_cross_matching_on_sets_equals_a_written_out_n3(seed, n, exclude_self, dtype):
    """N3Block1d(x, database=d) against every pair's distance, the database item at the query's index masked
    out (or not), Eqs. 8-10 and the concatenation [x, W^T d - x] projected by the block's 1x1 map."""
    torch.manual_seed(seed)
    block = N3Block1d(4, k=3, embed_channels=2, hidden_channels=4, temperature="scalar", exclude_self=exclude_self,
                      dtype=dtype).eval()
    with torch.no_grad():
        block.selector.log_temperature.fill_(0.3)
    x = torch.randn(2, 4, n, dtype=dtype, requires_grad=True)
    d = torch.randn(2, 4, n, dtype=dtype, requires_grad=True)
    eq, ek = block.selector.embedding(x).transpose(1, 2), block.selector.embedding(d).transpose(1, 2)
    scores = -((eq.unsqueeze(2) - ek.unsqueeze(1)) ** 2).sum(-1)  # (b, q, n)
    if exclude_self:
        scores = scores.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
    w = _knn_weights(scores, 3, math.exp(0.3) * 0.1)  # t = exp(log_t) * temp_bias, (b, q, n, k)
    vol = torch.einsum("bqnk,bcn->bkcq", w, d)
    cat = torch.cat([x, (vol - x.unsqueeze(1)).flatten(1, 2)], 1)
    proj = block.combiner.project
    ref = F.conv1d(cat, proj.weight.unsqueeze(-1), proj.bias)
    out = block(x, database=d)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (x, d), cot), torch.autograd.grad(ref, (x, d), cot)):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype] * 10)


@pytest.mark.parametrize("exclude_self", [True, False])
def test_hard_cross_matching_equals_brute_force(exclude_self):
    """KNNBlock2d(x, database=d): each query patch of x takes its k nearest patches of d in the window."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64)
    d = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64)
    block = KNNBlock2d(2, k=3, patch_size=2, patch_stride=2, window=6, relative=False, project=False,
                       exclude_self=exclude_self)
    pq, pd = F.unfold(x, 2, stride=2).transpose(1, 2), F.unfold(d, 2, stride=2).transpose(1, 2)  # 4x4 patches
    vols = torch.zeros(2, 16, 3, 8, dtype=torch.float64)
    for b in range(2):
        for q in range(16):
            qi, qj = divmod(q, 4)
            r0, c0 = min(max(qi - 1, 0), 1), min(max(qj - 1, 0), 1)
            cands = [r * 4 + c for r in range(r0, r0 + 3) for c in range(c0, c0 + 3)
                     if not (exclude_self and r * 4 + c == q)]
            dist = [((pq[b, q] - pd[b, m]) ** 2).sum().item() for m in cands]
            order = sorted(range(len(cands)), key=lambda i: (dist[i], cands[i]))[:3]
            for s, i in enumerate(order):
                vols[b, q, s] = pd[b, cands[i]]
    expected = F.fold(vols.permute(0, 2, 3, 1).reshape(2, 24, 16), (8, 8), 2, stride=2)
    torch.testing.assert_close(block(x, database=d), torch.cat([x, expected], 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("grid, window", [((7, 7), (3, 3)), ((5, 9), (5, 3)), ((6,), (4,)), ((4, 4), None)])
def test_exclude_self_removes_exactly_the_query_item(grid, window):
    keep = window_candidates(grid, window, exclude_self=False)
    drop = window_candidates(grid, window, exclude_self=True)
    assert drop.shape[1] == keep.shape[1] - 1
    for q in range(keep.shape[0]):
        row = keep[q].tolist()
        assert row.count(q) == 1
        row.remove(q)
        assert drop[q].tolist() == row  # the same candidates, in the same order, without the query


def test_exclude_self_false_lets_a_hard_block_pick_the_query_first():
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    nbhd = KNNBlock2d(3, k=2, patch_size=4, patch_stride=2, window=8, exclude_self=False).neighborhood(x)
    queries = torch.arange(nbhd.num_queries)
    assert torch.equal(nbhd.index[..., 0], queries.expand(2, -1))  # distance 0: its own patch
    nbhd = KNNBlock2d(3, k=2, patch_size=4, patch_stride=2, window=8).neighborhood(x)
    assert not (nbhd.index == queries[:, None]).any()
    sel = N3(2, patch_size=4, stride=2, window=8, exclude_self=False)
    assert sel.candidates((12, 12), torch.device("cpu"))[0].shape == (25, 9)  # a 3x3 window of patches


def test_bad_database():
    block = N3Block2d(3, k=2, **SMALL)
    x = torch.randn(1, 3, 12, 12)
    with pytest.raises(ValueError, match=r"database must match x.*\(1, 3, 10, 12\)"):
        block(x, database=torch.randn(1, 3, 10, 12))
    with pytest.raises(ValueError, match="database must match x"):
        block(x, database=x.double())
    with pytest.raises(TypeError, match="exclude_self"):
        N3Block2d(3, k=2, exclude_self="no", **SMALL)
    with pytest.raises(ValueError, match="path='fast'"):
        block(x, database=x, path="fast")


def test_window_candidates_compile_with_inductor():
    # the query's column used to be dropped by a gather; Inductor could not bound the patches
    # gathered through that gathered index ("vr must not be None"): the KNN block did not compile
    def distances(x):
        e = F.unfold(x, 4, stride=2).transpose(1, 2)  # (B, 25, 48): the 4x4 patches every 2 pixels
        return candidate_sq_distances_gathered(e, window_candidates((5, 5), (3, 3)))  # N3's form under compile

    x = torch.randn(2, 3, 12, 12)
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(distances, backend="inductor", fullgraph=True)(x), distances(x))
