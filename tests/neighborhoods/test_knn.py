"""functional.knn: best first, independent of block_size, ties to the lower index."""

import pytest
import torch

from neighborhoods.functional import METRICS, knn, similarity, top_k_stable


def brute_force(queries, keys, k, metric, exclude=None, key_mask=None):
    """Sort every (query, key) pair by (rank value, key index) with a per-pair formula."""
    out = torch.empty(*queries.shape[:2], k, dtype=torch.long)
    for b in range(queries.shape[0]):
        for i in range(queries.shape[1]):
            q = queries[b, i]
            ranked = []
            for j in range(keys.shape[1]):
                if (exclude is not None and j == exclude[i]) or (key_mask is not None and not key_mask[j]):
                    continue
                key = keys[b, j]
                if metric == "cosine":
                    value = -float(q @ key / (q.norm() * key.norm()))
                elif metric == "dot":
                    value = -float(q @ key)
                elif metric == "euclidean":
                    value = float(((q - key) ** 2).sum())
                else:
                    value = float((q - key).abs().max())
                ranked.append((value, j))
            out[b, i] = torch.tensor([j for _, j in sorted(ranked)[:k]])
    return out


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force_for_every_block_size(metric, seed):
    g = torch.Generator().manual_seed(seed)
    queries = torch.randn(2, 13, 4, generator=g, dtype=torch.float64)
    keys = torch.randn(2, 17, 4, generator=g, dtype=torch.float64)
    expected = brute_force(queries, keys, 5, metric)
    for block_size in (1, 7, 13, 1024):
        scores, idx = knn(queries, keys, 5, metric, block_size=block_size)
        assert torch.equal(idx, expected), block_size
    # scores are the metric's values, best first
    full = similarity(queries, keys, metric)
    torch.testing.assert_close(scores, full.gather(-1, idx), rtol=0, atol=1e-12)
    step = scores.diff(dim=-1)
    assert (step <= 0).all() if metric in ("cosine", "dot") else (step >= 0).all()


@pytest.mark.parametrize("metric", ["dot", "euclidean", "chebyshev"])
def test_exact_ties_go_to_the_lower_index(metric):
    g = torch.Generator().manual_seed(3)
    # integer coordinates in {-1, 0, 1}: most scores are exactly tied
    queries = torch.randint(-1, 2, (2, 6, 2), generator=g).double()
    keys = torch.randint(-1, 2, (2, 30, 2), generator=g).double()
    expected = brute_force(queries, keys, 9, metric)
    for block_size in (1, 4, 6):
        assert torch.equal(knn(queries, keys, 9, metric, block_size=block_size)[1], expected)


def test_all_keys_identical_gives_first_k_in_order():
    keys = torch.ones(1, 10, 3)
    idx = knn(torch.ones(1, 4, 3), keys, 6, "cosine")[1]
    assert torch.equal(idx, torch.arange(6).expand(1, 4, 6))


def test_exclude_and_key_mask_are_honoured():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 9, 3, generator=g, dtype=torch.float64)
    exclude = torch.arange(9)
    mask = torch.ones(9, dtype=torch.bool)
    mask[[2, 5]] = False
    idx = knn(x, x, 4, "euclidean", exclude=exclude, key_mask=mask, block_size=2)[1]
    assert torch.equal(idx, brute_force(x, x, 4, "euclidean", exclude=exclude, key_mask=mask))
    assert not (idx == exclude.view(1, 9, 1)).any()


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_top_k_stable_equals_a_stable_sort(k):
    # small integer scores: many exact ties, including across the k-th place
    scores = torch.randint(0, 4, (5, 6, 12)).double()
    values, index = top_k_stable(scores, k)
    ref = torch.sort(scores, dim=-1, descending=True, stable=True)
    assert torch.equal(index, ref.indices[..., :k])
    assert torch.equal(values, ref.values[..., :k])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_token_stays_in_its_sample(metric, bad):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 12, 4, generator=g)
    x[1, 5, 2] = bad
    exclude = torch.arange(12)
    scores, idx = knn(x, x, 4, metric, exclude=exclude, block_size=5)
    for b in (0, 2):  # the other samples: bit for bit what they give alone
        alone = knn(x[b:b + 1], x[b:b + 1], 4, metric, exclude=exclude, block_size=5)
        assert torch.equal(idx[b:b + 1], alone[1]) and torch.equal(scores[b:b + 1], alone[0])
    # the damaged sample still gets k distinct keys per query, never the excluded one, best first
    assert not (idx[1] == exclude.view(12, 1)).any()
    assert (idx[1].sort(-1).values.diff(dim=-1) > 0).all()
    assert torch.equal(idx[1], knn(x[1:2], x[1:2], 4, metric, exclude=exclude, block_size=12)[1][0])


def test_an_all_nan_query_takes_the_first_allowed_keys_in_index_order():
    x = torch.randn(1, 8, 3, dtype=torch.float64)
    x[0, 2] = float("nan")
    idx = knn(x, x, 3, "cosine", exclude=torch.arange(8))[1]
    # a NaN query scores NaN against every key: all tie, lower index first, itself excluded
    assert idx[0, 2].tolist() == [0, 1, 3]
    # for every other query the NaN key ranks last, so it is never among the 3 nearest of 7
    assert not (idx[0, torch.arange(8) != 2] == 2).any()


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pair_scorer_writes_the_same_bits_into_a_buffer(metric, dtype):
    # knn reuses one buffer for all blocks: the same product kernel on the same shapes, and for
    # euclidean (-2 m) + sq in place of sq - 2 m, which IEEE arithmetic makes exact
    from neighborhoods.functional.similarity import PairScorer

    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 11, 5, generator=g, dtype=dtype), torch.randn(2, 17, 5, generator=g, dtype=dtype)
    scorer = PairScorer(q, k, metric)
    buffer = torch.full((2 * 4 * 17,), float("nan"), dtype=dtype)
    for start, stop in ((0, 4), (4, 8), (8, 11)):
        out = buffer[: 2 * (stop - start) * 17].view(2, stop - start, 17)
        assert torch.equal(scorer.block(start, stop, out), scorer.block(start, stop))


def test_blocked_search_with_a_reused_buffer_keeps_autograd_when_asked():
    # the buffer (out=, no derivative) is skipped where the scores must carry a gradient
    x = torch.randn(1, 12, 4, requires_grad=True)
    scores, _ = knn(x, x, 3, "dot", block_size=5)
    scores.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_cpu_search_does_not_ask_why_the_fused_kernel_cannot_run(monkeypatch):
    # issue 20 item 2: fused=None on a CPU tensor skips the kernel without building the reason string
    import importlib

    knn_module = importlib.import_module("neighborhoods.functional.knn")  # the module: the package exports knn()

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)

    def no_reason(*args, **kwargs):
        raise AssertionError("fused_reason was called")

    monkeypatch.setattr(knn_module, "fused_reason", no_reason)
    x = torch.randn(2, 16, 4)
    scores, idx = knn_module.knn(x, x, 3)
    ref_scores, ref_idx = knn_module.knn(x, x, 3, fused=False)
    assert torch.equal(idx, ref_idx) and torch.equal(scores, ref_scores)
    with pytest.raises(AssertionError, match="fused_reason was called"):  # fused=True still asks (and says why)
        knn_module.knn(x, x, 3, fused=True)
