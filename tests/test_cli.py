"""CLI smoke tests: every command runs and --help works."""

import subprocess
import sys
from pathlib import Path

import pytest

from comparisons.cli import build_parser, main


def test_verify_passes(capsys):
    assert main(["verify", "--filter", "conv*"]) == 0
    out = capsys.readouterr().out
    assert "conv2d.reference==torch" in out and "0 failed" in out


def test_verify_unknown_filter_is_an_error(capsys):
    assert main(["verify", "--filter", "no-such-theorem"]) == 2


def test_list_shows_registry(capsys):
    assert main(["list"]) == 0
    assert "conv2d" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["verify"], ["list"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["list", "--filter"], ["list"], ["verify", "--filter"], ["verify", "--list", "--filter"]])
def test_no_match_is_exit_2_for_list_and_verify(command, capsys):
    assert main([*command, "no-such-name"]) == 2
    assert "no-such-name" in capsys.readouterr().err


@pytest.mark.parametrize("pattern, expected, excluded", [
    ("CONV?D", ["conv1d", "conv2d"], ["convnn2d"]),   # wildcard: whole name, any case
    ("cgnl", ["cgnl2d"], ["conv2d"]),                  # plain text: a substring
])
def test_list_filter(pattern, expected, excluded, capsys):
    assert main(["list", "--filter", pattern]) == 0
    names = {line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("│")}
    assert set(expected) <= names and not set(excluded) & names


def test_list_and_verify_share_one_filter():
    import operators
    from operators.registry import match
    from comparisons.theorems import THEOREMS, select

    for pattern in ["CGNL", "conv*", "spectral.?n*", "knn"]:
        assert [t.name for t in select(pattern)] == match(sorted(THEOREMS), pattern)
    assert match(operators.available(), "ConvNN") == [n for n in operators.available() if "convnn" in n]
    assert match(["a.b", "ab"], "a.b") == ["a.b"]          # '.' is literal, not a regex
    assert match(["conv2d", "convnn2d"], "conv*") == ["conv2d", "convnn2d"]
    assert match(["x"], None) == ["x"]


def test_fresh_process_prints_no_numpy_warning():
    # torch warns "Failed to initialize NumPy" on import when numpy is missing (issue 9.13):
    # numpy is a dependency, so a fresh `neighbor-zoo list` prints nothing of the kind
    script = Path(sys.executable).with_name("neighbor-zoo")
    command = [str(script), "list"] if script.exists() else [sys.executable, "-m", "comparisons.cli", "list"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "conv2d" in done.stdout
    for stream in (done.stdout, done.stderr):
        assert "NumPy" not in stream and "numpy" not in stream, stream
