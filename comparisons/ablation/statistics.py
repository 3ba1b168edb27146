"""The statistics of an ablation table: intervals over seeds, paired differences, verdicts, warnings.

Pure functions of numbers; :mod:`comparisons.ablation.summary` applies them to saved records.

- :func:`mean_ci`: the mean over seeds and its 95% confidence interval by Student's t with
  ``n - 1`` degrees of freedom, ``mean +- t_{0.975, n-1} * s / sqrt(n)``. One seed has no
  interval (``ci is None``), never ``+- 0``.
- :func:`paired_difference`: runs of two operators that share a seed share the data order and
  the initial RNG state, so they pair: the differences ``d_s = x_s - b_s`` over the shared
  seeds get :func:`mean_ci` and a two-sided paired t-test, ``t = mean(d) / (s_d / sqrt(n))``
  (what ``scipy.stats.ttest_rel`` computes).
- :func:`verdict`: ``better`` / ``worse`` when the paired test rejects "no difference" at the
  level (its interval excludes 0), in the metric's direction (:data:`HIGHER_IS_BETTER`);
  otherwise ``not distinguishable``.
- :func:`converged`: the training-loss criterion (:data:`CONVERGENCE_CRITERION`).
- :func:`last_epochs_spread`: how much the metric wanders within one run over its last epochs.

References: Student (1908); the case for intervals over runs and paired comparisons is
Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


LEVEL = 0.95
#: metric name -> whether a larger value is better; a metric not listed is an error, not a guess
HIGHER_IS_BETTER = {"accuracy": True, "psnr": True, "loss": False, "train_loss": False, "test_loss": False}
VERDICTS = ("better", "worse", "not distinguishable")
#: the share of the training epochs, at the end, over which convergence and spread are judged
TAIL_FRACTION = 0.25
#: the largest share of a run's total loss fall that may still happen in that tail
CONVERGENCE_TOLERANCE = 0.10
CONVERGENCE_CRITERION = (f"converged: the training loss (mean over seeds) fell by at most "
                         f"{CONVERGENCE_TOLERANCE:.0%} of its total fall (first to last epoch) during the last "
                         f"{TAIL_FRACTION:.0%} of the epochs (at least one epoch)")
MIN_SEEDS = 3


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values and its confidence interval (``None`` with fewer than 2 values)."""

    mean: float
    ci: tuple[float, float] | None
    n: int


@dataclass(frozen=True)
class Paired:
    """``operator - baseline`` over the seeds both ran: mean difference, its interval, the p-value."""

    diff: Estimate
    p: float | None
    seeds: tuple[int, ...]


def higher_is_better(metric: str) -> bool:
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"metric must be one of {', '.join(HIGHER_IS_BETTER)} (its direction decides the "
                         f"verdicts), got {metric!r}")
    return HIGHER_IS_BETTER[metric]


def _check_values(name: str, values: Sequence[float]) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name} must hold at least one value, got none")
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} must be finite, got {bad}")
    return out


def t_quantile(n: int, level: float = LEVEL) -> float:
    """The two-sided Student-t critical value for ``n`` values (``n - 1`` degrees of freedom)."""
    if n < 2:
        raise ValueError(f"a t interval needs n >= 2 values, got n={n}")
    from scipy import stats  # with scikit-learn, in the experiments extra; the core install never needs it

    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def mean_ci(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """Mean and ``level`` Student-t interval of ``values`` (``ci=None`` for a single value)."""
    xs = _check_values("values", values)
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return Estimate(mean, None, 1)
    half = t_quantile(len(xs), level) * statistics.stdev(xs) / math.sqrt(len(xs))
    return Estimate(mean, (mean - half, mean + half), len(xs))


def paired_difference(values: Mapping[int, float], baseline: Mapping[int, float], level: float = LEVEL) -> Paired:
    """``values[s] - baseline[s]`` over the seeds in both; mean, ``level`` interval, two-sided paired p.

    With one shared seed there is no interval and no p-value. When every difference is the
    same, the spread is 0: p is 1 if that difference is 0, else 0 (the test's limit).
    """
    seeds = tuple(sorted(set(values) & set(baseline)))
    if not seeds:
        raise ValueError(f"paired_difference needs seeds run by both, got {sorted(values)} and {sorted(baseline)}")
    d = _check_values("differences", [values[s] - baseline[s] for s in seeds])
    est = mean_ci(d, level)
    if len(d) < 2:
        return Paired(est, None, seeds)
    sd = statistics.stdev(d)
    if sd == 0.0:
        return Paired(est, 1.0 if est.mean == 0.0 else 0.0, seeds)
    from scipy import stats

    t = est.mean / (sd / math.sqrt(len(d)))
    p = float(2.0 * stats.t.sf(abs(t), len(d) - 1))
    return Paired(est, p, seeds)


def verdict(paired: Paired, metric: str, level: float = LEVEL) -> str:
    """``'better'``, ``'worse'`` or ``'not distinguishable'`` at ``level`` (see the module docstring)."""
    up = higher_is_better(metric)
    alpha = round(1.0 - level, 12)  # 1 - 0.95 is 0.050000000000000044 in binary
    if paired.p is None or paired.p >= alpha or paired.diff.mean == 0.0:
        return "not distinguishable"
    return "better" if (paired.diff.mean > 0) == up else "worse"


def tail_length(epochs: int) -> int:
    """How many final epochs :func:`converged` and :func:`last_epochs_spread` look at."""
    return max(1, math.ceil(TAIL_FRACTION * epochs))


def converged(losses: Sequence[float]) -> bool:
    """Whether a per-epoch training-loss curve meets :data:`CONVERGENCE_CRITERION`.

    ``(L[E - w] - L[E]) <= tol * (L[1] - L[E])`` with ``w`` = :func:`tail_length` (1-based
    epochs). A loss still falling steadily fails (about ``w / E`` of its fall is in the tail);
    one that did not fall at all fails too; a run of fewer than 2 epochs cannot be judged (False).
    """
    xs = _check_values("losses", losses)
    if len(xs) < 2:
        return False
    w = min(tail_length(len(xs)), len(xs) - 1)
    total = xs[0] - xs[-1]
    if total <= 0.0:
        return False
    return xs[-1 - w] - xs[-1] <= CONVERGENCE_TOLERANCE * total


def last_epochs_spread(curves: Sequence[Sequence[float]]) -> float:
    """Mean over runs of ``max - min`` of the metric over each run's last :func:`tail_length` epochs (+ 1).

    The last epoch and the ``w`` before it are compared, so a 4-epoch run looks at epochs 3-4.
    """
    if not curves:
        raise ValueError("curves must hold at least one run's per-epoch metric, got none")
    spreads = []
    for i, curve in enumerate(curves):
        xs = _check_values(f"curves[{i}]", curve)
        tail = xs[-1 - min(tail_length(len(xs)), len(xs) - 1):]
        spreads.append(max(tail) - min(tail))
    return statistics.fmean(spreads)


def fmt_estimate(est: Estimate, digits: int) -> str:
    """``'95.1 [94.2, 96.0]'``, or ``'95.1 (no CI: 1 seed)'``: never a ``± 0``."""
    if est.ci is None:
        return f"{est.mean:.{digits}f} (no CI: 1 seed)"
    return f"{est.mean:.{digits}f} [{est.ci[0]:.{digits}f}, {est.ci[1]:.{digits}f}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
