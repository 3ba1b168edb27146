"""A results.jsonl cut mid-line (issue 19): resuming keeps every complete record and says what it dropped.

Before, the next ``compare`` (and ``report``) crashed with a traceback on the partial line.
"""

import json

import pytest

from comparisons.ablation.results import collect, read_records
from comparisons.cli import main

TINY = {"task_options": {"subset": 64, "test_subset": 100}, "backbone_options": {"width": 2},
        "recipe_options": {"batch_size": 32}}


@pytest.fixture
def finished(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    argv = ["compare", "--config", str(config), "--operators", "conv2d", "--epochs", "2", "--seeds", "1",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    return argv, tmp_path / "out"


def _cut_last_record(path):
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    path.write_text(text[: len(text) - len(last) // 2 - 1])  # half of the last line, no newline
    return len(text.splitlines())


def test_resume_keeps_complete_records_and_says_what_it_dropped(finished, capsys):
    argv, out = finished
    full = collect([out])
    n = _cut_last_record(out / "results.jsonl")
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    notes = [line for line in printed.splitlines() if "dropped" in line]
    assert len(notes) == 1 and f"kept the {n - 1} complete records" in notes[0], printed
    assert collect([out]) == full  # the run folders hold the dropped epoch; results.jsonl is whole again
    assert len(read_records(out / "results.jsonl")) == n


def test_report_of_a_cut_file_says_what_it_dropped(finished, capsys):
    _, out = finished
    n = _cut_last_record(out / "results.jsonl")
    (out / "runs").rename(out / "elsewhere")  # results.jsonl alone
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert f"kept the {n - 1} complete records" in capsys.readouterr().out


def test_a_bad_complete_line_is_still_an_error(finished, tmp_path):
    _, out = finished
    first, second = (out / "results.jsonl").read_text().splitlines()[:2]
    path = tmp_path / "r.jsonl"
    path.write_text(f"{first}\nnot json\n{second}\n")
    with pytest.raises(ValueError, match="line 2 is not a JSON record"):
        read_records(path, [])
    path.write_text(f"{first}\n{second[:20]}")
    with pytest.raises(ValueError, match="line 2 is not a JSON record"):
        read_records(path)  # no list to report into: strict
    dropped = []
    assert len(read_records(path, dropped)) == 1 and len(dropped) == 1
