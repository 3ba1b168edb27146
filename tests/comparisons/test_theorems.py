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
    worst = max(verdict.trials, key=lambda t: t.error)
    assert verdict.passed, f"{thm.name}: error {verdict.error:.3e} > {verdict.tolerance:.0e} at {worst.shapes}"


def test_a_wrong_claim_fails():
    """The harness can fail: a theorem whose two sides differ is reported as failing."""
    from comparisons.theorems.base import Theorem, Trial

    bogus = Theorem("bogus", "1 == 2", lambda g, d: iter([Trial("x", 1.0)]), {torch.float64: 1e-10})
    assert not verify(bogus).passed
