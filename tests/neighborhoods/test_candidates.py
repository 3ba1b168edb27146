"""Sums and distances over a static candidate list (the N3 block's aggregation) without gathering.

Each is compared with the direct form (gather, then contract; full similarity, then gather)
on random inputs, values and gradients, float64 and float32, for several block sizes; and
memory-bounded: a dispatch-mode meter shows the gathered (B, Nq, M, D) tensor and the
Nq x Nq distance blocks are never held, with the direct forms as the control that it would
catch them.
"""

import pytest
import torch

import operators
from comparisons.bench.memory import LiveTensorBytes
from neighborhoods.functional.candidates import (candidate_sq_distances, candidate_sum, candidate_sum_gathered,
                                                 key_bands)
from neighborhoods.functional.patches import window_candidates
from neighborhoods.functional.similarity import similarity

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
CASES = [((5, 6), None), ((7, 7), (3, 3)), ((9, 4), (5, 3)), ((12,), (5,))]


def _close(a, b, dtype):
    """max |a - b| relative to max(1, max |b|): the theorems' scaled error."""
    err = (a - b).abs().max() / b.abs().max().clamp_min(1)
    assert err <= TOL[dtype], f"scaled error {float(err):.2e} > {TOL[dtype]:.0e}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("grid, window", CASES)
@pytest.mark.parametrize("block_size", [None, 1, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_candidate_sum_matches_gather_then_contract(grid, window, block_size, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    index = window_candidates(grid, window)
    nq, m = index.shape
    values = torch.randn(3, nq, 6, generator=g, dtype=dtype).requires_grad_()
    weight = torch.randn(3, nq, m, 4, generator=g, dtype=dtype).requires_grad_()
    ours, ref = candidate_sum(values, index, weight, block_size), candidate_sum_gathered(values, index, weight)
    _close(ours, ref, dtype)
    up = torch.randn(ours.shape, generator=g, dtype=dtype)
    for a, b in zip(torch.autograd.grad(ours, (values, weight), up), torch.autograd.grad(ref, (values, weight), up)):
        _close(a, b, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("grid, window", CASES)
@pytest.mark.parametrize("block_size", [None, 1, 5])
def test_candidate_distances_match_full_similarity(grid, window, block_size, dtype):
    g = torch.Generator().manual_seed(0)
    index = window_candidates(grid, window)
    e = torch.randn(2, index.shape[0], 5, generator=g, dtype=dtype).requires_grad_()
    ours = candidate_sq_distances(e, index, block_size)
    ref = similarity(e, e, "euclidean").gather(-1, index.expand(2, -1, -1))
    _close(ours, ref, dtype)
    up = torch.randn(ours.shape, generator=g, dtype=dtype)
    _close(torch.autograd.grad(ours, e, up)[0], torch.autograd.grad(ref, e, up)[0], dtype)


def test_block_size_does_not_change_the_result():
    index = window_candidates((8, 8), (3, 5))
    values, weight = torch.randn(2, 64, 3, dtype=torch.float64), torch.randn(2, 64, 14, 2, dtype=torch.float64)
    outs = [candidate_sum(values, index, weight, b) for b in (1, 3, 64, None)]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=0, atol=1e-12)


def test_key_bands_cover_each_block_and_a_window_is_narrower_than_the_grid():
    index = window_candidates((20, 20), (5, 5))
    bands = key_bands(index, 20, 400)
    assert [b[:2] for b in bands] == [(q, q + 20) for q in range(0, 400, 20)]
    for q0, q1, lo, hi in bands:
        assert lo <= int(index[q0:q1].min()) and int(index[q0:q1].max()) < hi
    assert max(hi - lo for *_, lo, hi in bands) == 5 * 20  # a grid row of queries reads 5 rows of keys, not 20


def test_bad_arguments_are_named():
    index = window_candidates((3, 3), None)
    with pytest.raises(TypeError, match="index"):
        candidate_sum(torch.randn(1, 9, 2), index.float(), torch.randn(1, 9, 8, 1))
    with pytest.raises(ValueError, match="weight"):
        candidate_sum(torch.randn(1, 9, 2), index, torch.randn(1, 9, 7, 1))
    with pytest.raises(ValueError, match=r"index entries must lie in \[0, 4\)"):
        candidate_sum(torch.randn(1, 4, 2), index, torch.randn(1, 9, 8, 1))
    with pytest.raises(ValueError, match="every one of the N=4 items"):
        candidate_sq_distances(torch.randn(1, 4, 2), index)


# ---- memory: nothing of size Nq x M x D or Nq x Nq is ever held ---------------------------------------------------

def _meter(fn):
    with LiveTensorBytes() as mem:
        fn()
    return mem


def test_candidate_sum_never_holds_the_gathered_tensor():
    nq, d, s = 1024, 32, 2
    index = window_candidates((nq,), None)  # every item a candidate: M = Nq - 1
    values = torch.randn(1, nq, d, requires_grad=True)
    weight = torch.randn(1, nq, nq - 1, s, requires_grad=True)
    gathered_bytes = nq * (nq - 1) * d * 4

    def run(fn):
        return lambda: fn(values, index, weight).sum().backward()

    control = _meter(run(candidate_sum_gathered))
    assert control.largest >= gathered_bytes  # the meter sees the gathered tensor when it exists
    ours = _meter(run(lambda v, i, w: candidate_sum(v, i, w, block_size=64)))
    # weight-sized tensors (its gradient) are inherent; a gathered (Nq, M, D) one is 16x bigger
    assert ours.largest <= weight.numel() * 4 < gathered_bytes / 8
    assert ours.peak < gathered_bytes / 4


def test_candidate_distances_keep_no_nq_by_nq_matrix_under_autograd():
    n = 2048
    index = window_candidates((n,), None)
    e = torch.randn(1, n, 4, requires_grad=True)
    out_bytes = n * (n - 1) * 4

    def blocked_similarity():  # the earlier form: blocks of the full similarity, then gather
        return torch.cat([similarity(e[:, q:q + 256], e, "euclidean").gather(-1, index[q:q + 256].expand(1, -1, -1))
                          for q in range(0, n, 256)], dim=1)

    for fn, holds_blocks in [(blocked_similarity, True), (lambda: candidate_sq_distances(e, index, 256), False)]:
        with LiveTensorBytes() as mem:
            out = fn()
            held = mem.live_bytes() - out.untyped_storage().nbytes()  # what autograd keeps for the backward pass
            out.sum().backward()
        if holds_blocks:
            assert held >= n * n * 4  # the control: every block's distances are saved
        else:
            assert held < n * n * 4 / 16 and mem.largest <= out_bytes  # e (and small scratch), nothing Nq x Nq


def test_n3block1d_forward_backward_holds_no_gathered_tensor():
    # set data, every item a candidate (N3Block1d's default window=None): items are tokens, D = C
    n, c, k = 1024, 32, 1
    torch.manual_seed(0)
    block = operators.create("n3block1d", in_channels=c, k=k, embed_channels=4, hidden_channels=8)
    x = torch.randn(1, c, n, requires_grad=True)
    mem = _meter(lambda: block(x).sum().backward())
    gathered_bytes = n * (n - 1) * c * 4
    assert mem.largest < gathered_bytes / 8
    assert mem.peak < gathered_bytes / 2


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_negligible_weights_enter_the_products_as_zero_within_the_stated_bound(dtype):
    # softmax weights underflow gradually; subnormal ones slow CPU matrix products ~10x, so
    # weights under tiny / eps are dropped from the scratch matrix (never from the gradient)
    from neighborhoods.functional.candidates import negligible

    g = torch.Generator().manual_seed(0)
    index = window_candidates((6, 6), (3, 3))
    nq, m = index.shape
    values = torch.randn(2, nq, 5, generator=g, dtype=dtype).requires_grad_()
    lowest = {torch.float32: -160, torch.float64: -1090}[dtype]  # below the subnormal range of each dtype
    weight = (2.0 ** torch.randint(lowest, 1, (2, nq, m, 3), generator=g).to(dtype)).requires_grad_()
    small = weight.detach() < negligible(dtype)
    assert small.any() and (~small).any()
    ours, ref = candidate_sum(values, index, weight), candidate_sum_gathered(values, index, weight)
    bound = negligible(dtype) * m * values.detach().abs().max() + TOL[dtype] * ref.detach().abs().max()
    assert (ours - ref).abs().max() <= bound
    grad = torch.randn(ours.shape, generator=g, dtype=dtype)
    gw, gv = torch.autograd.grad(ours, (weight, values), grad)
    rw, rv = torch.autograd.grad(ref, (weight, values), grad)
    _close(gw, rw, dtype)  # exact for the dropped weights too
    assert (gv - rv).abs().max() <= bound * grad.abs().max() * 3
