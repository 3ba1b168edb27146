"""top_k_rows' chunk-maximum pruning gives what the search over whole rows gives, on the same rows.

Both run the same torch kernels on the scores, so values and indices are compared exactly
(bitwise), on rows built to hit every branch: random floats (pruned), ties across the k-th
place and across chunks (falling back), NaN, +-inf, signed zeros and forbidden entries.
The pruning is the torch path, taken where the C scan is not (test_top_k_scan.py tests that
one): the scan is switched off here.
"""

import pytest
import torch

from neighborhoods.functional import knn, topk
from neighborhoods.functional.topk import _top_k_rows_full, chunk_width, top_k_rows, top_k_stable

NAN, INF = float("nan"), float("inf")


@pytest.fixture(autouse=True)
def torch_path_only(monkeypatch):
    monkeypatch.setattr(topk, "top_k_scan", lambda scores, k: None)


def assert_same(got, expected):
    assert torch.equal(got[1], expected[1])
    assert torch.equal(got[0].isnan(), expected[0].isnan())
    assert torch.equal(got[0].nan_to_num(0.0, 1e300, -1e300), expected[0].nan_to_num(0.0, 1e300, -1e300))
    assert torch.equal(got[0].signbit(), expected[0].signbit())  # -0.0 stays -0.0


def test_chunk_width_prunes_long_rows_only():
    assert chunk_width(topk.PRUNE_MIN_KEYS - 1, 8) == 0
    assert chunk_width(4096, 8) == 23  # round(sqrt(4096 / 8))
    assert chunk_width(4096, 2000) == 0  # k g would not be below half the keys
    for n in (1024, 1500, 4096, 16384):
        for k in (1, 8, 30):
            g = chunk_width(n, k)
            assert g == 0 or ((k + 1) * g <= n // 2 and n // g > k + 1)


@pytest.mark.parametrize("n", [3072, 3079, 4096])  # 3079: a tail of keys outside every chunk
@pytest.mark.parametrize("k", [1, 8, 24])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_pruned_rows_equal_whole_rows(n, k, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(64, n, generator=g, dtype=dtype)
    scores[1] = scores[1].round()  # many ties among the best
    scores[2] = torch.randint(0, 3, (n,), generator=g).to(dtype)  # ties across the k-th place
    scores[3, 5] = NAN
    scores[4, -1] = INF  # in the tail when n is not a multiple of the chunk width
    scores[5] = -INF
    scores[6, ::7] = -0.0
    scores[6, 1::7] = 0.0
    scores[6, 2::7] = 10.0  # more than k equal maxima, spread over the chunks
    scores[7] = NAN
    scores[8, : n // 2] = scores[8, n - n // 2:]  # each value twice, in two chunks
    assert chunk_width(n, k)
    got = top_k_rows(scores, k)
    assert_same(got, _top_k_rows_full(scores, k))
    # and the documented order, through the public entry point
    ref = scores.sort(dim=-1, descending=True, stable=True)
    finite_rows = [i for i in range(64) if not scores[i].isnan().any()]
    assert torch.equal(got[1][finite_rows], ref.indices[finite_rows, :k])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forbidden_entries_reach_the_rows_that_fall_back(seed):
    g = torch.Generator().manual_seed(seed)
    n, k = 2048, 5
    scores = torch.randint(0, 4, (12, n), generator=g).double()
    scores[:3] = torch.randn(3, n, generator=g, dtype=torch.float64)  # pruned rows
    scores[3] = -INF  # genuine -inf everywhere: forbidden ones must still rank after them
    forbidden = torch.rand(12, n, generator=g) < 0.5
    forbidden[3, :10] = True
    got = top_k_stable(scores, k, forbidden=forbidden)
    flat = scores.masked_fill(forbidden, -INF)
    expected = _top_k_rows_full(flat, k, forbidden.__getitem__)
    assert_same(got, expected)
    assert got[1][3].tolist() == [i for i in range(n) if not forbidden[3, i]][:k]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_on_long_rows_is_the_same_with_or_without_pruning(metric, monkeypatch):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1200, 6, generator=g)
    x[1, 17] = x[1, 900]  # a duplicate token: an exact tie between two keys far apart
    x[0, 40] = NAN
    exclude = torch.arange(1200)
    pruned = knn(x, x, 8, metric, exclude=exclude, block_size=300)
    monkeypatch.setattr(topk, "PRUNE_MIN_KEYS", 10**9)
    whole = knn(x, x, 8, metric, exclude=exclude, block_size=300)
    assert_same(pruned, whole)
