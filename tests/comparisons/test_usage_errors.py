"""One CLI rule (issue 19, item 5): a usage error exits 2 with one line on stderr and no traceback.

Before, these ended in a traceback with status 1 (an --out that is a file, an unknown
operator, a query outside the photo, --step 0, --k 0), exited 0 doing the wrong thing
(--batch 0 benchmarked B = 0, --operators "" ran the default sweep), or printed the error
to stdout. Each case runs ``comparisons.cli.main`` in-process (argparse's errors exit via
SystemExit); one runs the real console entry point in a subprocess.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comparisons.cli import main


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


CASES = {
    "compare --out is a file": ["compare", "--out", "{afile}"],
    "compare --out below a file": ["compare", "--out", "{afile}/sub"],
    "compare --operators empty": ["compare", "--operators", "", "--out", "{tmp}/c"],
    "compare --operators blank": ["compare", "--operators", " , ", "--out", "{tmp}/c"],
    "report --out is a file": ["report", "{adir}", "--out", "{afile}"],
    "report of a missing folder": ["report", "{tmp}/missing"],
    "figures --out is a file": ["figures", "--out", "{afile}"],
    "show --out is a folder": ["show", "conv2d", "--out", "{adir}"],
    "show --out below a file": ["show", "conv2d", "--out", "{afile}/x.png"],
    "show unknown name": ["show", "no_such_layer", "--out", "{tmp}/x.png"],
    "show --query outside": ["show", "conv2d", "--size", "16", "--query", "16,0", "--out", "{tmp}/x.png"],
    "show --query negative": ["show", "conv2d", "--size", "16", "--query", "-1,0", "--out", "{tmp}/x.png"],
    "show --query malformed": ["show", "conv2d", "--query", "3", "--out", "{tmp}/x.png"],
    "show --size 0": ["show", "conv2d", "--size", "0", "--out", "{tmp}/x.png"],
    "show --slot out of range": ["show", "conv2d", "--slot", "9", "--out", "{tmp}/x.png"],
    "show --slot negative": ["show", "conv2d", "--slot", "-1", "--out", "{tmp}/x.png"],
    "show conv1d": ["show", "conv1d", "--out", "{tmp}/x.png"],
    "show self_attention": ["show", "self_attention", "--out", "{tmp}/x.png"],
    "explore --step 0": ["explore", "--step", "0", "--out", "{tmp}/e.html"],
    "explore --step > size": ["explore", "--step", "99", "--size", "16", "--out", "{tmp}/e.html"],
    "explore --out is a folder": ["explore", "--out", "{adir}"],
    "bench --k 0": ["bench", "--k", "0", "--out", "{tmp}/b.json"],
    "bench --batch 0": ["bench", "--batch", "0", "--out", "{tmp}/b.json"],
    "bench --channels 0": ["bench", "--channels", "0", "--out", "{tmp}/b.json"],
    "bench --min-run-time 0": ["bench", "--min-run-time", "0", "--out", "{tmp}/b.json"],
    "bench --out is a folder": ["bench", "--out", "{adir}"],
    "bench --out below a file": ["bench", "--out", "{afile}/b.json"],
    "bench --resume of a non-JSON file": ["bench", "--resume", "--out", "{afile}", "--operators", "conv2d"],
    "list unknown filter": ["list", "no-such-name"],
    "verify unknown filter": ["verify", "--filter", "no-such-name"],
    "unknown command": ["no-such-command"],
}


def _run(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return exc.code


@pytest.mark.parametrize("case", CASES)
def test_usage_error_is_status_2_and_one_stderr_line(case, paths, capsys):
    argv = [a.format(tmp=paths, afile=paths / "afile", adir=paths / "adir") for a in CASES[case]]
    assert _run(argv) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neighbor-zoo") and ": error: " in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    assert not (paths / "c").exists() and not (paths / "b.json").exists()  # nothing ran


def test_show_says_why_a_1d_operator_has_no_picture(paths, capsys):
    assert _run(["show", "conv1d", "--out", str(paths / "x.png")]) == 2
    assert "conv1d takes (B, C, N) inputs, not images" in capsys.readouterr().err


def test_the_console_script_prints_no_traceback(paths):
    root = str(Path(__file__).resolve().parents[2])  # this checkout's packages, whatever the cwd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "comparisons.cli", "bench", "--batch", "0"], capture_output=True,
                          text=True, cwd=paths, env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["neighbor-zoo bench: error: argument --batch: --batch must be >= 1, got 0"]


def test_bench_resume_of_a_cut_file_names_it(paths, capsys):
    (paths / "cut.json").write_text(json.dumps({"results": []})[:-3])
    assert _run(["bench", "--resume", "--out", str(paths / "cut.json"), "--operators", "conv2d"]) == 2
    assert "is not a JSON benchmark" in capsys.readouterr().err
