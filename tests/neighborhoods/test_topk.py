"""top_k_stable: the documented order (larger first, ties to the lower index, NaN last) at topk's cost."""

import pytest
import torch

from neighborhoods.functional import top_k_stable
from neighborhoods.functional.topk import _top_k_exact

NAN, INF = float("nan"), float("inf")


def stable_sort_top_k(scores, k, forbidden=None):
    """Independent reference: a stable ascending sort of -score (NaN after -inf, forbidden after NaN).

    Lexicographic order by stable sorts, least significant key first: the NaN flag, -score with
    NaN read as +inf, then (most significant) the forbidden flag.
    """
    order = torch.arange(scores.shape[-1]).expand_as(scores)
    neg = torch.where(scores.isnan(), INF, -scores)
    keys = [scores.isnan().to(torch.uint8), neg]
    if forbidden is not None:
        forbidden = forbidden.expand_as(scores)
        # forbidden entries all read -inf, so among themselves they go by index
        keys = [(scores.isnan() & ~forbidden).to(torch.uint8), neg.masked_fill(forbidden, INF),
                forbidden.to(torch.uint8)]
    for key in keys:
        step = torch.sort(key.gather(-1, order), dim=-1, stable=True).indices
        order = order.gather(-1, step)
    order = order[..., :k]
    values = scores.gather(-1, order)
    if forbidden is not None:
        values = values.masked_fill(forbidden.gather(-1, order), -INF)
    return values, order


def assert_same(got, expected):
    # values compared bit for bit, NaN included (equal_nan), indices exactly
    assert torch.equal(got[1], expected[1])
    assert torch.equal(got[0].isnan(), expected[0].isnan())
    assert torch.equal(got[0].nan_to_num(0.0, 1e300, -1e300), expected[0].nan_to_num(0.0, 1e300, -1e300))


@pytest.mark.parametrize("shape", [(5, 6, 12), (3, 200), (2, 3, 1000), (7, 1)])
@pytest.mark.parametrize("levels", [2, 4, 30])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_heavily_tied_integer_scores_match_a_stable_sort(shape, levels, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, shape, generator=g).to(dtype)
    n = shape[-1]
    for k in sorted({1, min(2, n), min(3, n), max(1, n // 2), max(1, n - 1), n}):
        got = top_k_stable(scores, k)
        assert_same(got, stable_sort_top_k(scores, k))
        # the fast path agrees bit for bit with the exact routine run on every row
        exact = _top_k_exact(scores.reshape(-1, n), k)
        assert torch.equal(got[1].reshape(-1, k), exact[1]) and torch.equal(got[0].reshape(-1, k), exact[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_non_finite_scores_are_ordered_nan_last(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(-3, 4, (40, 16), generator=g).to(dtype)
    special = torch.tensor([NAN, INF, -INF, -0.0, 0.0], dtype=dtype)
    where = torch.rand(40, 16, generator=g) < 0.4
    picks = special[torch.randint(0, 5, (40, 16), generator=g)]
    scores = torch.where(where, picks, scores)
    scores[0] = NAN  # a row of NaN only: first k indices in order
    scores[1] = -INF
    for k in (1, 5, 15, 16):
        got = top_k_stable(scores, k)
        assert_same(got, stable_sort_top_k(scores, k))
        assert torch.equal(got[1][0], torch.arange(k))


def test_nan_ranks_after_minus_inf_and_signed_zeros_tie():
    scores = torch.tensor([[NAN, -INF, 1.0, -0.0, INF, 0.0, NAN]])
    values, idx = top_k_stable(scores, 7)
    assert idx.tolist() == [[4, 2, 3, 5, 1, 0, 6]]
    assert values[0, :5].tolist() == [INF, 1.0, 0.0, 0.0, -INF] and values[0, 5:].isnan().all()


@pytest.mark.parametrize("seed", [0, 1])
def test_forbidden_entries_rank_after_nan(seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 3, (6, 4, 10), generator=g).double()
    scores[0, 0, :] = NAN
    scores[1, :, 3] = -INF
    forbidden = torch.rand(6, 1, 10, generator=g) < 0.3
    for k in (1, 4, 10):
        got = top_k_stable(scores, k, forbidden=forbidden)
        assert_same(got, stable_sort_top_k(scores, k, forbidden))


def test_random_floats_and_the_fast_path_agree_with_the_reference():
    g = torch.Generator().manual_seed(4)
    scores = torch.randn(64, 500, generator=g)
    for k in (1, 9, 100):
        assert_same(top_k_stable(scores, k), stable_sort_top_k(scores, k))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="k must be <="):
        top_k_stable(torch.zeros(2, 3), 4)
    with pytest.raises(TypeError, match="forbidden must be a bool tensor"):
        top_k_stable(torch.zeros(2, 3), 1, forbidden=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="forbidden must broadcast"):
        top_k_stable(torch.zeros(2, 3), 1, forbidden=torch.zeros(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="scores must be a floating-point"):
        top_k_stable(torch.zeros(2, 3, dtype=torch.long), 1)
