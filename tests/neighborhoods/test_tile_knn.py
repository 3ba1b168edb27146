"""The tiled C k-NN search (neighborhoods/functional/tile_knn.c) against the blocked search of knn.py.

Two independent computations of one search: the kernel scores a tile of queries against packed
keys with its own multiply-add chains and scans each row at once; the blocked search scores with
torch's matmul and selects with the scan or torch's topk. Their scores may differ in the last bits
(another summation order), so:

* the kernel's values are the metric's values at its indices, to float32 2e-6 / float64 1e-13
  (relative, and absolute times the largest score);
* its indices are the blocked search's in every row except where the blocked scores of two
  candidates around a place it fills are closer than that tolerance (a near tie);
* on small-integer inputs every product and sum is exact in any order, so there the two
  agree bit for bit, ties (to the lower index) included.

Needs a C compiler; without one these tests are skipped, saying so (knn then runs its blocked search).
"""

import importlib

import pytest
import torch

from neighborhoods.functional import knn, native, similarity

knn_module = importlib.import_module("neighborhoods.functional.knn")

needs_kernel = pytest.mark.skipif(native._compiler() is None, reason="no C compiler on the PATH: tile_knn.c "
                                  "cannot be built here and knn runs its blocked search")

@pytest.fixture(autouse=True)
def every_size_takes_the_kernel(monkeypatch):
    # the kernel itself is tested on small shapes too; knn() takes it from TILE_MIN_KEYS keys on
    monkeypatch.setattr(knn_module, "TILE_MIN_KEYS", 1)


TOLERANCE = {torch.float32: 2e-6, torch.float64: 1e-13}
METRICS = ("cosine", "dot", "euclidean")


def blocked(queries, keys, k, metric, exclude=None):
    """The blocked search (a block size given: the tiled kernel is not asked)."""
    return knn(queries, keys, k, metric, block_size=max(1, queries.shape[1] // 3), exclude=exclude)


def tiled(queries, keys, k, metric, exclude=None):
    found = knn_module._tile_search(queries, keys, k, metric, exclude)
    assert found is not None, "the tiled kernel declined a plain CPU search"
    return found


def near_tie_rows(queries, keys, k, metric, exclude, tol):
    """Rows whose blocked scores, best first, hold two neighbours within ``tol`` among the first k + 1."""
    scores = similarity(queries, keys, metric)
    if exclude is not None:
        scores = scores.scatter(-1, exclude.expand(scores.shape[:2]).unsqueeze(-1),
                                float("-inf") if metric != "euclidean" else float("inf"))
    ranked = scores.sort(-1, descending=metric != "euclidean").values[..., : k + 1]
    return (ranked.diff(dim=-1).abs() <= tol * ranked.abs().amax(-1, keepdim=True).clamp_min(1)).any(-1)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("shape", [(1, 5, 7, 3, 2), (2, 13, 40, 5, 4), (3, 37, 37, 17, 9), (2, 100, 257, 64, 9)])
@pytest.mark.parametrize("seed", [0, 1])
def test_tiled_search_equals_the_blocked_search(dtype, metric, shape, seed):
    # B, Nq, Nk, D, k: query counts off the 6-row tile, key counts off the 16 (8) key panel
    b, nq, nk, d, k = shape
    g = torch.Generator().manual_seed(seed)
    queries = torch.randn(b, nq, d, generator=g, dtype=dtype)
    keys = queries if nq == nk else torch.randn(b, nk, d, generator=g, dtype=dtype)
    exclude = torch.randperm(nk, generator=g)[:nq]
    tol = TOLERANCE[dtype]
    for ex in (None, exclude):
        values, idx = tiled(queries, keys, k, metric, ex)
        ref_values, ref_idx = blocked(queries, keys, k, metric, ex)
        # the values are the metric's at the chosen keys, best first
        full = similarity(queries, keys, metric)
        atol = tol * max(1.0, float(full.abs().max()))  # round-off scales with the scores (|q|^2 in a distance)
        torch.testing.assert_close(values, full.gather(-1, idx), rtol=tol, atol=atol)
        step = values.diff(dim=-1)
        assert (step <= 0).all() if metric != "euclidean" else (step >= 0).all()
        if ex is not None:
            assert not (idx == ex.view(1, nq, 1)).any()
        differ = (idx != ref_idx).any(-1)
        ties = near_tie_rows(queries, keys, k, metric, ex, tol)
        assert not (differ & ~ties).any(), f"{int((differ & ~ties).sum())} rows differ without a near tie"
        assert differ.float().mean() < 0.01, "more than 1% of the rows differ: the near-tie allowance would hide a bug"
        torch.testing.assert_close(values[~differ], ref_values[~differ], rtol=tol, atol=atol)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("metric", ["dot", "euclidean"])
def test_exact_inputs_give_the_blocked_bits_and_ties_go_to_the_lower_index(dtype, metric):
    # coordinates in {-1, 0, 1}: every product and sum is exact, most scores tie exactly
    g = torch.Generator().manual_seed(3)
    queries = torch.randint(-1, 2, (2, 23, 3), generator=g).to(dtype)
    keys = torch.randint(-1, 2, (2, 45, 3), generator=g).to(dtype)
    for exclude in (None, torch.arange(23) * 2):
        got = tiled(queries, keys, 9, metric, exclude)
        ref = blocked(queries, keys, 9, metric, exclude)
        assert torch.equal(got[1], ref[1]) and torch.equal(got[0], ref[0])
        # and the documented order itself: a stable sort by (value, index)
        scores = similarity(queries, keys, metric)
        if exclude is not None:
            scores = scores.scatter(-1, exclude.expand(2, 23).unsqueeze(-1), float("inf") if metric == "euclidean"
                                    else float("-inf"))
        order = scores.sort(dim=-1, descending=metric == "dot", stable=True).indices[..., :9]
        assert torch.equal(got[1], order)


@needs_kernel
def test_the_thread_count_changes_no_bit():
    # every score is one multiply-add chain wherever its query falls: the same kernel on the same shapes
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 300, 64, generator=g)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = tiled(x, x, 9, "cosine", torch.arange(300))
        torch.set_num_threads(max(2, threads))
        many = tiled(x, x, 9, "cosine", torch.arange(300))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], many[0]) and torch.equal(one[1], many[1])


@needs_kernel
def test_knn_takes_the_tiled_kernel_only_where_it_gives_the_same_search(monkeypatch):
    calls = []
    real = knn_module.tile_knn
    monkeypatch.setattr(knn_module, "tile_knn", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    x = torch.randn(2, 30, 8)
    knn(x, x, 4, "cosine")
    assert len(calls) == 1
    monkeypatch.setattr(knn_module, "TILE_MIN_KEYS", 31)  # fewer keys than that: the blocked search
    knn(x, x, 4, "cosine")
    assert len(calls) == 1
    monkeypatch.setattr(knn_module, "TILE_MIN_KEYS", 30)
    # a block size asks for the blocked search; a key mask, chebyshev, scores autograd records: not the kernel's
    knn(x, x, 4, "cosine", block_size=7)
    knn(x, x, 4, "cosine", key_mask=torch.ones(30, dtype=torch.bool))
    knn(x, x, 4, "chebyshev")
    xg = x.clone().requires_grad_()
    scores, _ = knn(xg, xg, 4, "dot")
    scores.sum().backward()
    assert xg.grad is not None and len(calls) == 1
    with torch.no_grad():  # the same tensor under no_grad: nothing to record, the kernel runs
        knn(xg, xg, 4, "dot")
    assert len(calls) == 2


@needs_kernel
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_rows_the_scan_leaves_open_go_to_the_blocked_search(bad):
    # a NaN or infinite token makes some rows' k-th value -inf or NaN: the whole search is then the blocked one
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 20, 4, generator=g, dtype=torch.float64)
    x[1, 5, 2] = bad
    exclude = torch.arange(20)
    got = knn(x, x, 5, "euclidean", exclude=exclude)
    ref = knn(x, x, 5, "euclidean", exclude=exclude, block_size=20)
    assert torch.equal(got[1], ref[1])
    assert torch.equal(got[0].nan_to_num(7.0, 1e300, -1e300), ref[0].nan_to_num(7.0, 1e300, -1e300))


@needs_kernel
def test_an_excluded_index_outside_the_keys_is_the_blocked_search_s_error():
    x = torch.randn(1, 6, 3)
    with pytest.raises(RuntimeError, match="index"):
        knn(x, x, 2, "cosine", exclude=torch.tensor([0, 1, 2, 3, 4, 6]))
    assert native.tile_knn(x, x, 2, exclude=torch.tensor([[0, 1, 2, 3, 4, -1]])) is None


@needs_kernel
def test_the_wrapper_declines_what_the_kernel_cannot_take():
    x = torch.randn(1, 6, 3)
    assert native.tile_knn(x.half(), x.half(), 2) is None
    assert native.tile_knn(x, x.double(), 2) is None
    assert native.tile_knn(x, x, 7) is None and native.tile_knn(x, x, 0) is None
    empty = native.tile_knn(x[:, :0], x, 2)
    assert empty[0].shape == (1, 0, 2) and empty[1].shape == (1, 0, 2)


@needs_kernel
def test_the_profile_names_the_kernel_a_fused_stage():
    # bench --profile: the tiled search's scores + top-k are one "fused" range, its normalisation "similarity"
    from torch.profiler import ProfilerActivity, profile

    from neighborhoods.functional.stages import PREFIX

    x = torch.randn(2, 40, 8)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        knn(x, x, 4, "cosine", exclude=torch.arange(40))
    names = {event.name for event in prof.events() if event.name.startswith(PREFIX)}
    assert names == {PREFIX + "similarity", PREFIX + "fused"}
