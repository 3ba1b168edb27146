"""A run's record: typed on the way in, the same JSON line on the way out, old results folders still load."""

import json
from pathlib import Path

import pytest

from comparisons.ablation import RunRecord, collect
from comparisons.ablation.results import read_records, write_records
from comparisons.cli import main

ROOT = Path(__file__).parents[3]
SAVED = sorted((ROOT / "docs" / "results").glob("compare-*"))

LINE = dict(task="digits", backbone="vgg", operator="conv2d", spec="conv2d(kernel_size=3, padding=1)", index=0, seed=1,
            epoch=2, epochs=4, train_loss=0.25, test_loss=0.3, metric="accuracy", value=92.5, seconds=0.3,
            peak_memory_mb=5.8, parameters=145898, recipe="default", device="cpu", world_size=1,
            fingerprint="0123456789abcdef")


def test_saved_folders_are_there():
    assert [p.name for p in SAVED] == ["compare-denoise", "compare-digits", "compare-selection"]


@pytest.mark.parametrize("folder", SAVED, ids=lambda p: p.name)
def test_saved_results_load_and_write_back_byte_for_byte(folder, tmp_path):
    records = read_records(folder / "results.jsonl")
    assert records and all(isinstance(r, RunRecord) and not r.extra for r in records)
    write_records(tmp_path / "results.jsonl", records)
    assert (tmp_path / "results.jsonl").read_bytes() == (folder / "results.jsonl").read_bytes()


@pytest.mark.parametrize("folder", SAVED, ids=lambda p: p.name)
def test_report_renders_saved_results_as_committed(folder, tmp_path):
    assert main(["report", str(folder), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").read_text() == (folder / "report.md").read_text()


def test_record_reads_by_attribute_and_round_trips():
    record = RunRecord.from_json(LINE)
    assert (record.operator, record.seed, record.epoch, record.value) == ("conv2d", 1, 2, 92.5)
    assert record.key == ("digits", "vgg", "conv2d", 1, 2) and record.numbers == (0.25, 0.3, 92.5)
    assert record.to_json() == LINE


def test_unknown_keys_are_kept_and_written_back(tmp_path):
    line = dict(LINE, ci_low=91.0, provenance={"commit": "abc"})
    record = RunRecord.from_json(line)
    assert record.extra == {"ci_low": 91.0, "provenance": {"commit": "abc"}}
    assert record.to_json() == line
    (tmp_path / "runs" / "conv2d-seed1").mkdir(parents=True)
    (tmp_path / "runs" / "conv2d-seed1" / "records.jsonl").write_text(json.dumps(line) + "\n")
    assert collect([tmp_path])[0].extra["ci_low"] == 91.0


def test_optional_keys_have_defaults_and_required_ones_are_named(tmp_path):
    old = {k: v for k, v in LINE.items() if k not in ("index", "spec", "recipe", "device", "world_size", "fingerprint")}
    record = RunRecord.from_json(old)
    assert (record.index, record.spec, record.world_size, record.fingerprint) == (0, None, 1, None)
    assert record.to_json() == {**old, "index": 0, "world_size": 1}  # defaults written out; unset strings left out
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(LINE) + "\n" + json.dumps({k: v for k, v in LINE.items() if k != "value"}) + "\n")
    with pytest.raises(ValueError, match=r"records.jsonl line 2: record lacks the key\(s\) value"):
        read_records(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="line 1: a record must be a JSON object, got list"):
        read_records(path)
