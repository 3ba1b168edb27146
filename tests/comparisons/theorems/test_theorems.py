"""Every registered theorem (whoever wrote it) holds in float64 and float32, for two seeds."""

import pytest
import torch

from comparisons.theorems import select, verify


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("thm", select(), ids=lambda t: t.name)
def test_theorem_holds(thm, dtype, seed):
    verdict = verify(thm, seed=seed, dtype=dtype)
    assert verdict.trials, f"{thm.name} ran no trials"
    worst = verdict.worst
    assert verdict.passed, f"{thm.name}: error {worst.error:.3e} > {verdict.bound(worst):.0e} at {worst.shapes}"


def test_a_wrong_claim_fails():
    """The harness can fail: a theorem whose two sides differ is reported as failing."""
    from comparisons.theorems.base import Theorem, Trial

    bogus = Theorem("bogus", "1 == 2", lambda g, d: iter([Trial("x", 1.0)]), {torch.float64: 1e-10})
    assert not verify(bogus).passed


def test_a_trial_may_state_its_own_tolerance():
    from comparisons.theorems.base import Theorem, Trial

    trials = [Trial("tight", 1e-12), Trial("ill-conditioned", 5e-3, tolerance=1e-2)]
    thm = Theorem("own", "per-trial bounds", lambda g, d: iter(trials), {torch.float64: 1e-10})
    verdict = verify(thm)
    assert verdict.passed and verdict.worst.shapes == "ill-conditioned"  # 0.5 of its bound vs 0.01
    looser = Theorem("own2", "", lambda g, d: iter([Trial("x", 2e-2, tolerance=1e-2)]), {torch.float64: 1.0})
    assert not verify(looser).passed  # the trial's own bound replaces the theorem's, both ways


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("thm", select(), ids=lambda t: t.name)
def test_theorem_holds_for_seeds_0_to_49(thm, dtype):
    """What `neighbor-zoo verify --seeds 0:50 --dtype ...` checks (slow: 50 seeds of every theorem)."""
    from comparisons.theorems import sweep

    result = sweep(thm, range(50), dtype)
    assert result.failure is None, f"{thm.name} raised at seed {result.failure[0]}: {result.failure[1]}"
    seed, verdict = result.worst
    worst = verdict.worst
    assert result.passed, f"{thm.name}: seed {seed}: {worst.error:.3e} > {verdict.bound(worst):.0e} at {worst.shapes}"
