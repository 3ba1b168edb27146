"""Theorems users add: plugin files and entry points, seed sweeps, ERROR rows, --list."""

import importlib.metadata
import re
import textwrap
from pathlib import Path

import pytest

from comparisons.cli import main
from comparisons.theorems import base

README = Path(__file__).parents[3] / "README.md"

# the seed a check runs under is its generator's initial seed: these errors depend on it alone
SEEDED = """
from comparisons.theorems import Trial, theorem

@theorem("mine.grows_with_seed", "the error is the seed times 1e-12")
def grows(generator, dtype):
    yield Trial("s", generator.initial_seed() * 1e-12)

@theorem("mine.fails_at_seed_3", "exact except at seed 3")
def fails_at_3(generator, dtype):
    yield Trial("s", 1.0 if generator.initial_seed() == 3 else 0.0)
"""

RAISES = """
from comparisons.theorems import Trial, theorem

@theorem("mine.raises", "a check with a bug in it")
def raises(generator, dtype):
    yield Trial("first", 0.0)
    raise RuntimeError("boom in the check")

@theorem("mine.holds", "a check that holds")
def holds(generator, dtype):
    yield Trial("x", 0.0)
"""


@pytest.fixture(autouse=True)
def isolated_theorems(monkeypatch):
    """Plugins register into a copy of the registry, so no test sees another's theorems."""
    monkeypatch.setattr(base, "THEOREMS", dict(base.THEOREMS))


def _plugin(tmp_path: Path, source: str, name: str = "my_theorems.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_readme_plugin_example_runs_as_a_plugin(tmp_path, capsys):
    """The file shown in README's 'Add a theorem' loads with --plugin and its theorem passes."""
    section = README.read_text().split("## Add a theorem", 1)[1].split("\n## ", 1)[0]
    source = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    name = re.search(r'@theorem\("([^"]+)"', source).group(1)
    path = _plugin(tmp_path, source)
    for dtype in ("float64", "float32"):
        assert main(["verify", "--plugin", path, "--filter", name, "--dtype", dtype]) == 0
        out = capsys.readouterr().out
        assert name in out and "1 passed, 0 failed" in out


def test_seed_sweep_reports_the_worst_seed(tmp_path, capsys):
    path = _plugin(tmp_path, SEEDED)
    assert main(["verify", "--plugin", path, "--filter", "mine.grows*", "--seeds", "0:5"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "mine.grows_with_seed" in line)
    assert re.search(r"\b4\b", row) and "4.00e-12" in row and "pass" in row

    assert main(["verify", "--plugin", path, "--filter", "mine.grows*", "--seeds", "2,7,3"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "mine.grows_with_seed" in line)
    assert re.search(r"\b7\b", row) and "7.00e-12" in row


def test_a_failure_at_one_seed_fails_the_sweep(tmp_path, capsys):
    path = _plugin(tmp_path, SEEDED)
    assert main(["verify", "--plugin", path, "--filter", "mine.fails*", "--seeds", "0:3"]) == 0
    capsys.readouterr()
    assert main(["verify", "--plugin", path, "--filter", "mine.fails*", "--seeds", "0:5"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if "mine.fails_at_seed_3" in line)
    assert re.search(r"\b3\b", row) and "FAIL" in row


def test_a_theorem_that_raises_is_an_error_row(tmp_path, capsys):
    path = _plugin(tmp_path, RAISES)
    assert main(["verify", "--plugin", path, "--filter", "mine"]) == 1
    out = capsys.readouterr().out
    raised = next(line for line in out.splitlines() if "mine.raises" in line)
    assert "ERROR" in raised and "RuntimeError: boom in the check" in raised
    held = next(line for line in out.splitlines() if "mine.holds" in line)
    assert "pass" in held  # the table still holds the other theorems
    assert "1 passed, 1 failed" in out


@pytest.mark.parametrize("source, expected", [
    ("x = 1 / 0\n", "ZeroDivisionError: division by zero"),
    ("from comparisons.theorems import theorem\n"
     "theorem('conv2d.reference==torch', 'a clash')(lambda g, d: iter(()))\n", "already registered"),
])
def test_a_plugin_that_fails_to_load_names_file_and_exception(tmp_path, capsys, source, expected):
    path = _plugin(tmp_path, source, "broken_theorems.py")
    assert main(["verify", "--plugin", path]) == 2
    out = " ".join(capsys.readouterr().err.split())
    assert "broken_theorems.py" in out and expected in out


def test_a_missing_plugin_file_is_a_usage_error(tmp_path, capsys):
    assert main(["verify", "--plugin", str(tmp_path / "nope.py")]) == 2
    assert "nope.py" in capsys.readouterr().err


def test_plugin_is_repeatable(tmp_path, capsys):
    first = _plugin(tmp_path, SEEDED, "first.py")
    second = _plugin(tmp_path, RAISES.replace("mine.", "other."), "second.py")
    assert main(["verify", "--plugin", first, "--plugin", second, "--list"]) == 0
    out = capsys.readouterr().out
    assert "mine.grows_with_seed" in out and "other.holds" in out


def test_entry_point_group_is_loaded(tmp_path, capsys, monkeypatch):
    _plugin(tmp_path, SEEDED, "packaged_theorems.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = importlib.metadata.EntryPoint("packaged", "packaged_theorems", "neighbor_zoo.theorems")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [entry] if kw.get("group") == "neighbor_zoo.theorems" else real(**kw))
    assert main(["verify", "--filter", "mine.grows*"]) == 0
    assert "mine.grows_with_seed" in capsys.readouterr().out


def test_a_broken_entry_point_names_itself(capsys, monkeypatch):
    entry = importlib.metadata.EntryPoint("broken", "no_such_module_anywhere", "neighbor_zoo.theorems")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [entry])
    assert main(["verify", "--list"]) == 2
    out = " ".join(capsys.readouterr().err.split())
    assert "'broken'" in out and "ModuleNotFoundError" in out


def test_list_prints_statements_and_tolerances(capsys):
    assert main(["verify", "--list", "--filter", "conv2d.reference==torch"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "conv2d.reference==torch" in line)
    assert "Conv2d through the explicit window" in row and "1e-10" in row and "1e-04" in row
    assert "passed," not in out  # --list runs nothing


def test_list_shows_every_theorem(capsys):
    assert main(["verify", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in base.THEOREMS)
