"""comparisons.ablation.statistics against scipy.stats and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from comparisons.ablation.statistics import (Estimate, Paired, converged, fmt_estimate, higher_is_better,
                                             last_epochs_spread, mean_ci, paired_difference, tail_length,
                                             verdict)


def test_mean_ci_by_hand():
    # values 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.302653, half width 4.302653 / sqrt(3) = 2.484138
    est = mean_ci([1.0, 2.0, 3.0])
    assert est.mean == 2.0 and est.n == 3
    assert est.ci == pytest.approx((2.0 - 2.484138, 2.0 + 2.484138), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_mean_ci_matches_scipy(seed, n):
    x = np.random.default_rng(seed).normal(90.0, 3.0, n)
    lo, hi = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
    est = mean_ci(x.tolist())
    assert est.mean == pytest.approx(x.mean(), rel=1e-12)
    assert est.ci == pytest.approx((lo, hi), rel=1e-10)


def test_one_seed_has_no_interval_and_says_so():
    est = mean_ci([95.0])
    assert est.ci is None and est.n == 1
    text = fmt_estimate(est, 1)
    assert "no CI" in text and "± 0" not in text and "0.0]" not in text


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3, 7])
def test_paired_difference_matches_ttest_rel(seed, n):
    rng = np.random.default_rng(seed)
    base = rng.normal(90, 2, n)
    other = base + rng.normal(0.5, 1.0, n)
    seeds = list(range(10, 10 + n))
    paired = paired_difference(dict(zip(seeds, other.tolist())), dict(zip(seeds, base.tolist())))
    ref = stats.ttest_rel(other, base)
    assert paired.p == pytest.approx(ref.pvalue, rel=1e-9)
    d = other - base
    assert paired.diff.mean == pytest.approx(d.mean(), rel=1e-12)
    assert paired.diff.ci == pytest.approx(stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d)),
                                           rel=1e-9)
    assert paired.seeds == tuple(seeds)


def test_pairing_is_by_seed_not_by_position():
    # the same numbers in another dict order: only seeds decide the pairs; unshared seeds are left out
    a = {0: 10.0, 1: 12.0, 2: 11.0, 7: 99.0}
    b = {2: 10.0, 0: 9.0, 1: 11.5}
    paired = paired_difference(a, b)
    assert paired.seeds == (0, 1, 2)
    assert paired.diff.mean == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert paired.p == pytest.approx(stats.ttest_rel([10.0, 12.0, 11.0], [9.0, 11.5, 10.0]).pvalue)


def test_paired_difference_edge_cases():
    assert paired_difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}).p == 1.0   # no difference at all
    same = paired_difference({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0})           # the same +1 in every pair
    assert same.p == 0.0 and same.diff.ci == (1.0, 1.0)
    one = paired_difference({0: 2.0}, {0: 1.0})
    assert one.p is None and one.diff.ci is None
    with pytest.raises(ValueError, match="seeds run by both"):
        paired_difference({0: 1.0}, {1: 1.0})
    with pytest.raises(ValueError, match="finite"):
        paired_difference({0: math.nan, 1: 1.0}, {0: 1.0, 1: 1.0})


def _paired(diff: float, p: float | None) -> Paired:
    return Paired(Estimate(diff, None, 3), p, (0, 1, 2))


@pytest.mark.parametrize("metric, diff, p, expected", [
    ("accuracy", 2.0, 0.01, "better"), ("accuracy", -2.0, 0.01, "worse"),
    ("psnr", 0.3, 0.049, "better"), ("psnr", 0.3, 0.05, "not distinguishable"),
    ("loss", -0.1, 0.01, "better"), ("loss", 0.1, 0.01, "worse"),   # lower loss is better
    ("accuracy", 5.0, None, "not distinguishable"),                 # one seed: nothing to test
    ("accuracy", 5.0, 0.2, "not distinguishable"),
])
def test_verdict_minds_the_metric_direction(metric, diff, p, expected):
    assert verdict(_paired(diff, p), metric) == expected


def test_verdict_agrees_with_the_interval():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 8))
        base = rng.normal(0, 1, n)
        other = base + rng.normal(rng.normal(0, 1), 1, n)
        paired = paired_difference(dict(enumerate(other)), dict(enumerate(base)))
        lo, hi = paired.diff.ci
        excludes_zero = lo > 0 or hi < 0
        assert (verdict(paired, "accuracy") != "not distinguishable") == excludes_zero


def test_unknown_metric_direction_is_an_error():
    with pytest.raises(ValueError, match="metric must be one of"):
        higher_is_better("f1")
    assert higher_is_better("psnr") and not higher_is_better("loss")


def test_converged_criterion_by_hand():
    # 8 epochs: the tail is the last 2 epochs (25%), compared from epoch 6 to epoch 8
    flat = [2.0, 1.0, 0.5, 0.3, 0.21, 0.2, 0.195, 0.19]       # tail fall 0.01 of 1.81 total
    assert tail_length(8) == 2 and converged(flat)
    steady = [2.0 - 0.2 * e for e in range(8)]                # a straight line: 2/7 of the fall in the tail
    assert not converged(steady)
    assert not converged([1.0, 1.0, 1.0, 1.0])                # never fell
    assert not converged([1.0, 1.2, 1.5, 2.0])                # rose
    assert not converged([0.5])                               # one epoch cannot be judged
    # either side of the tolerance: 9% of the total fall in the tail passes, 11% does not
    assert converged([2.0, 1.5, 1.09, 1.0])
    assert not converged([2.0, 1.5, 1.11, 1.0])


def test_last_epochs_spread():
    # 8 epochs: the last epoch and the 2 before it; per run max - min, averaged over runs
    a = [0, 0, 0, 0, 0, 90.0, 95.0, 93.0]
    b = [0, 0, 0, 0, 0, 91.0, 91.0, 92.0]
    assert last_epochs_spread([a, b]) == pytest.approx((5.0 + 1.0) / 2)
    assert last_epochs_spread([[3.0]]) == 0.0
    with pytest.raises(ValueError, match="at least one run"):
        last_epochs_spread([])
