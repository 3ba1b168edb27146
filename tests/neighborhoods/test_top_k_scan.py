"""The C top-k scan (neighborhoods/functional/top_k_scan.c) gives what the torch path gives.

Two independent computations of the same selection: the scan's one pass per row against
``torch.topk`` plus the exact tie rule (``_top_k_rows_full``), on the same score tensors.
Selection does no arithmetic, so values and indices are compared exactly (bitwise), in float32
and float64, on random rows and on rows built to hit every rule: ties across the k-th place,
NaN, +-inf, signed zeros and forbidden entries. The scan needs a C compiler; where none is on
the PATH these tests are skipped, saying so (the library then keeps its torch path).
"""

import os
import subprocess
import sys

import pytest
import torch

from neighborhoods.functional import knn, native, topk
from neighborhoods.functional.topk import _top_k_rows_full, top_k_rows, top_k_stable

NAN, INF = float("nan"), float("inf")

needs_scan = pytest.mark.skipif(native._compiler() is None, reason="no C compiler on the PATH: the C top-k scan "
                                "cannot be built here and the library runs its torch path")


def assert_same(got, expected):
    assert torch.equal(got[1], expected[1])
    assert torch.equal(got[0].isnan(), expected[0].isnan())
    assert torch.equal(got[0].nan_to_num(0.0, 1e300, -1e300), expected[0].nan_to_num(0.0, 1e300, -1e300))
    assert torch.equal(got[0].signbit(), expected[0].signbit())


def torch_path(scores, k, forbidden_rows=None):
    return _top_k_rows_full(scores, k, forbidden_rows)


@needs_scan
def test_the_scan_is_built_where_a_compiler_is():
    assert native.native_reason() is None
    assert native.top_k_scan(torch.randn(3, 10), 2) is not None


@needs_scan
@pytest.mark.parametrize("shape", [(1, 1), (5, 17), (33, 100), (64, 4096), (7, 4099)])
@pytest.mark.parametrize("k", [1, 9, "n"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_equals_torch_topk_on_random_rows(shape, k, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(shape, generator=g, dtype=dtype)
    k = shape[1] if k == "n" else min(k, shape[1])
    raw = native.top_k_scan(scores, k)
    assert raw is not None
    assert_same(raw, torch_path(scores, k))  # random floats: no row is left open
    assert_same(top_k_rows(scores, k), torch_path(scores, k))


@needs_scan
@pytest.mark.parametrize("n", [31, 32, 200, 4096])  # below, at and above one vector block of the skip
@pytest.mark.parametrize("k", [1, 8, 24])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_scan_keeps_the_tie_and_nan_rules(n, k, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    k = min(k, n)
    scores = torch.randn(16, n, generator=g, dtype=dtype)
    scores[1] = scores[1].round()  # many ties among the best
    scores[2] = torch.randint(0, 3, (n,), generator=g).to(dtype)  # ties across the k-th place
    scores[3, 5] = NAN
    scores[4, -1] = INF
    scores[4, 0] = INF  # two +inf: tie by index
    scores[5] = -INF
    scores[6, ::7] = -0.0
    scores[6, 1::7] = 0.0  # -0.0 and 0.0 tie, by index, each keeping its sign
    scores[7] = NAN
    scores[8, : n // 2] = NAN  # NaN first, then numbers
    scores[9, : n // 2] = -INF
    scores[9, n // 2:] = NAN  # fewer than k numbers: -inf before NaN
    scores[10] = torch.arange(n, dtype=dtype)  # increasing: every entry enters the list
    scores[11] = -torch.arange(n, dtype=dtype)  # decreasing: none after the first k
    scores[12, torch.randperm(n, generator=g)[: n // 3]] = NAN
    assert_same(top_k_rows(scores, k), torch_path(scores, k))
    ref = scores.sort(dim=-1, descending=True, stable=True)
    finite = [i for i in range(16) if not scores[i].isnan().any()]
    assert torch.equal(top_k_rows(scores, k)[1][finite], ref.indices[finite, :k])


@needs_scan
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forbidden_entries_rank_after_nan_and_genuine_minus_inf(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    n, k = 300, 6
    scores = torch.randint(0, 4, (12, n), generator=g).to(dtype)
    scores[:3] = torch.randn(3, n, generator=g, dtype=dtype)
    scores[3] = -INF
    scores[4, ::2] = NAN
    forbidden = torch.rand(12, n, generator=g) < 0.5
    forbidden[3, :10] = True
    forbidden[5] = True
    forbidden[5, [7, 100]] = False  # fewer allowed keys than k
    got = top_k_stable(scores, k, forbidden=forbidden)
    flat = scores.masked_fill(forbidden, -INF)
    assert_same(got, torch_path(flat, k, forbidden.__getitem__))
    assert got[1][3].tolist() == [i for i in range(n) if not forbidden[3, i]][:k]
    assert got[1][5, :2].tolist() == [7, 100]


@needs_scan
def test_thread_count_does_not_change_the_result():
    g = torch.Generator().manual_seed(4)
    scores = torch.randn(301, 1000, generator=g)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = native.top_k_scan(scores, 9)
        torch.set_num_threads(max(2, before))
        many = native.top_k_scan(scores, 9)
    finally:
        torch.set_num_threads(before)
    assert_same(one, many)


@needs_scan
def test_values_carry_gradients_through_the_scan():
    g = torch.Generator().manual_seed(5)
    scores = torch.randn(20, 64, generator=g, dtype=torch.float64, requires_grad=True)
    values, idx = top_k_rows(scores, 4)
    values.sum().backward()
    expected = torch.zeros_like(scores).scatter_(1, idx, 1.0)
    assert torch.equal(scores.grad, expected)


def test_blocks_the_scan_does_not_take_return_none():
    assert native.top_k_scan(torch.randn(4, 10).t(), 2) is None  # not contiguous
    assert native.top_k_scan(torch.randn(4, 10, dtype=torch.float16), 2) is None
    assert native.top_k_scan(torch.randn(2, 4, 10), 2) is None  # not 2-D
    assert native.top_k_scan(torch.randn(4, 10), 11) is None  # k > n


@needs_scan
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_is_the_same_with_or_without_the_scan(metric, monkeypatch):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1200, 6, generator=g)
    x[1, 17] = x[1, 900]  # a duplicate token: an exact tie between two keys far apart
    x[0, 40] = NAN
    mask = torch.rand(1200, generator=g) > 0.1
    exclude = torch.arange(1200)
    scanned = knn(x, x, 8, metric, exclude=exclude, key_mask=mask, block_size=300)
    monkeypatch.setattr(topk, "top_k_scan", lambda scores, k: None)
    plain = knn(x, x, 8, metric, exclude=exclude, key_mask=mask, block_size=300)
    assert_same(scanned, plain)


def _in_fresh_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_native_off_keeps_the_torch_path_and_says_why(tmp_path):
    done = _in_fresh_python("from neighborhoods.functional import native; import torch; "
                            "print(native.native_reason()); print(native.top_k_scan(torch.randn(2, 5), 1))",
                            NEIGHBOR_ZOO_NATIVE="0", NEIGHBOR_ZOO_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["NEIGHBOR_ZOO_NATIVE=0 is set", "None"]
    assert not any(tmp_path.iterdir())


def test_no_compiler_keeps_the_torch_path_and_says_why(tmp_path):
    done = _in_fresh_python("from neighborhoods.functional import native; print(native.native_reason())",
                            PATH=str(tmp_path), CC="", NEIGHBOR_ZOO_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("no C compiler found")


@needs_scan
def test_the_library_is_built_once_into_the_cache(tmp_path):
    code = ("from neighborhoods.functional import native; import torch; "
            "assert native.native_reason() is None, native.native_reason(); "
            "print(native.top_k_scan(torch.tensor([[1., 3., 2.]]), 2)[1].tolist())")
    first = _in_fresh_python(code, NEIGHBOR_ZOO_CACHE=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "[[1, 2]]"
    built = sorted(p.name for p in tmp_path.iterdir())
    assert len(built) == 1 and built[0].startswith("kernels-") and built[0].endswith(".so")
    mtime = (tmp_path / built[0]).stat().st_mtime_ns
    # a second process loads the cached build instead of building it again
    second = _in_fresh_python(code, NEIGHBOR_ZOO_CACHE=str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert (tmp_path / built[0]).stat().st_mtime_ns == mtime


def test_a_bad_native_switch_is_named():
    done = _in_fresh_python("from neighborhoods.functional import native; native.native_reason()",
                            NEIGHBOR_ZOO_NATIVE="false")
    assert done.returncode != 0
    assert ("ValueError: the environment variable NEIGHBOR_ZOO_NATIVE must be '0' (torch path) or '1' "
            "(the C kernels, default), got 'false'") in done.stderr


@needs_scan
def test_kernels_built_with_and_without_openmp_agree(tmp_path):
    """With OpenMP the kernels share torch's libgomp (one runtime in the process); without, threads of
    their own (parallel_rows.h). Both split rows alike, so scan and rounds give the same numbers."""
    code = ("import sys, torch; from neighborhoods.functional import native; {plain}"
            "torch.set_num_threads(2); assert native.native_reason() is None, native.native_reason(); "
            "g = torch.Generator().manual_seed(0); s = torch.randn(600, 1024, generator=g); s[5, ::7] = 0.5; "
            "v, i = native.top_k_scan(s, 9); "
            "w, lw = native.knn_rounds_forward(torch.randn(300, 40, 80, generator=g), torch.tensor(0.3), 4, True); "
            "torch.save((v, i, w, lw), sys.argv[1] if len(sys.argv) > 1 else {out!r}); "
            "print(sorted({{l.split()[-1] for l in open('/proc/self/maps') if 'gomp' in l}}))")
    runs = {}
    for name, plain in (("openmp", ""), ("plain", "native._OPENMP = []; ")):
        cache = tmp_path / name
        done = _in_fresh_python(code.format(plain=plain, out=str(tmp_path / f"{name}.pt")),
                                NEIGHBOR_ZOO_CACHE=str(cache))
        assert done.returncode == 0, done.stderr
        runs[name] = (torch.load(tmp_path / f"{name}.pt"), done.stdout.strip())
    (openmp, openmp_maps), (plain, plain_maps) = runs["openmp"], runs["plain"]
    for a, b in zip(openmp, plain):
        assert torch.equal(a, b)
    # at most one OpenMP runtime: torch's own libgomp, which the OpenMP build shares
    assert openmp_maps.count("gomp") <= 1 and plain_maps.count("gomp") <= 1, (openmp_maps, plain_maps)
