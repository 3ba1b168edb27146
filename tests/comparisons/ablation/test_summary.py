"""The ablation table from records: estimates, paired verdicts against the baseline, warnings, JSON."""

from __future__ import annotations

import json

import pytest
from scipy import stats as sps

from comparisons.ablation.summary import markdown, notes, tables, to_json

FALLING = [2.0, 1.0, 0.5, 0.31, 0.3, 0.3, 0.3, 0.3]     # converged by the criterion
STEADY = [2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6]      # still falling


def records(op, index, finals, loss=FALLING, val=None, metric="accuracy", env=None, **extra):
    out = []
    for seed, final in finals.items():
        for e, l in enumerate(loss, 1):
            out.append({"task": "digits", "backbone": "vgg", "metric": metric, "operator": op, "index": index,
                        "seed": seed, "epoch": e, "epochs": len(loss), "train_loss": l,
                        "val_value": (val or {}).get(seed, [final] * len(loss))[e - 1],
                        "value": final if e == len(loss) else None, "seconds": 0.5, "parameters": 1000 + index,
                        "flops": 20000, "spec": op, "environment": env, **extra})
    return out


def test_estimates_and_paired_verdicts_match_scipy():
    base = {0: 90.0, 1: 92.0, 2: 91.0}
    good = {0: 95.0, 1: 96.5, 2: 95.2}
    same = {0: 90.5, 1: 91.0, 2: 91.8}
    recs = records("conv2d", 0, base) + records("convnn", 1, good) + records("n3", 2, same)
    (table,) = tables(recs)
    assert table.baseline == "conv2d" and [r.operator for r in table.rows] == ["conv2d", "convnn", "n3"]
    conv, convnn, n3 = table.rows
    assert conv.paired is None and conv.verdict is None
    lo, hi = sps.t.interval(0.95, 2, loc=sum(good.values()) / 3, scale=sps.sem(list(good.values())))
    assert convnn.estimate.ci == pytest.approx((lo, hi))
    ref = sps.ttest_rel([good[s] for s in range(3)], [base[s] for s in range(3)])
    assert convnn.paired.p == pytest.approx(ref.pvalue) and convnn.verdict == "better"
    assert n3.verdict == "not distinguishable"
    assert all(r.converged and not r.warnings for r in table.rows)


def test_baseline_option_and_an_unknown_one():
    recs = records("a", 0, {0: 1.0, 1: 2.0, 2: 3.0}) + records("b", 1, {0: 5.0, 1: 6.5, 2: 7.2})
    (table,) = tables(recs, baseline="b")
    assert table.baseline == "b" and table.rows[0].verdict == "worse"
    with pytest.raises(ValueError, match=r"baseline must be one of the operators \['a', 'b'\], got 'c'"):
        tables(recs, baseline="c")


def test_lower_is_better_for_a_loss_metric():
    recs = (records("a", 0, {0: 1.0, 1: 1.1, 2: 1.2}, metric="loss")
            + records("b", 1, {0: 0.5, 1: 0.55, 2: 0.7}, metric="loss"))
    assert tables(recs)[0].rows[1].verdict == "better"


def test_warnings_few_seeds_not_converged_and_spread():
    recs = (records("base", 0, {0: 90.0, 1: 91.0})
            + records("slow", 1, {0: 80.0, 1: 81.5}, loss=STEADY)
            + records("noisy", 2, {0: 93.0, 1: 94.0},
                      val={0: [0] * 5 + [80.0, 99.0, 93.0], 1: [0] * 5 + [85.0, 99.0, 94.0]}))
    (table,) = tables(recs)
    base, slow, noisy = table.rows
    assert any("2 seeds (< 3)" in w for w in base.warnings)
    assert "training loss not converged" in slow.warnings and not slow.converged
    assert noisy.verdict == "better"
    assert any("less than the metric's spread of 16.50" in w for w in noisy.warnings)
    text = "\n".join(notes(table))
    assert "slow: training loss not converged" in text and "converged: the training loss (mean over seeds)" in text


def test_one_seed_prints_no_interval_instead_of_zero():
    recs = records("a", 0, {0: 90.0}) + records("b", 1, {0: 95.0})
    (table,) = tables(recs)
    md = markdown(table)
    assert "± 0" not in md and "no CI: 1 seed" in md
    assert table.rows[1].verdict == "not distinguishable"
    data = to_json(table)
    assert data["rows"][0]["ci95"] is None and data["rows"][1]["vs_baseline"]["p"] is None


def test_unfinished_runs_are_left_out_and_the_noisy_input_row_shows():
    recs = records("a", 0, {0: 25.0, 1: 25.5, 2: 25.2}, metric="psnr", input_value=20.44)
    recs += [r for r in records("b", 1, {0: 26.0}, metric="psnr", input_value=20.44) if r["epoch"] < 8]
    (table,) = tables(recs)
    assert [r.operator for r in table.rows] == ["a"]
    assert "| noisy input | 0 | 0 | 20.44 (fixed) |" in markdown(table)


def test_json_has_exactly_the_documented_keys():
    env = {"torch": "2.x", "cpu": "some cpu"}
    recs = records("a", 0, {0: 1.0, 1: 2.0, 2: 3.0}, env=env) + records("b", 1, {0: 2.0, 1: 2.5, 2: 3.9}, env=env)
    data = json.loads(json.dumps(to_json(tables(recs)[0])))
    assert set(data) == {"baseline", "metric", "environment", "rows"} and data["environment"] == env
    for row in data["rows"]:
        assert set(row) == {"operator", "mean", "ci95", "seeds", "params", "flops", "s_per_epoch", "converged",
                            "vs_baseline"}
    assert data["rows"][0]["vs_baseline"] is None
    assert set(data["rows"][1]["vs_baseline"]) == {"diff", "ci95", "p", "verdict"}
    assert data["rows"][1]["vs_baseline"]["diff"] == pytest.approx(0.8)


def test_csv_has_one_row_per_operator():
    import csv
    import io

    from comparisons.ablation.summary import CSV_COLUMNS, to_csv

    recs = records("a", 0, {0: 1.0, 1: 2.0, 2: 3.0}) + records("b", 1, {0: 2.0, 1: 2.5, 2: 3.9})
    rows = list(csv.DictReader(io.StringIO(to_csv(tables(recs)))))
    assert [r["operator"] for r in rows] == ["a", "b"] and list(rows[0]) == list(CSV_COLUMNS)
    assert rows[0]["diff"] == "" and float(rows[1]["diff"]) == pytest.approx(0.8)
    assert float(rows[1]["mean"]) == pytest.approx(2.8) and rows[1]["verdict"] in ("better", "not distinguishable")
