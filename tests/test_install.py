"""The light core install: what `pip install neighbor-zoo` brings, and what works without the experiments extra.

Without a second virtual environment, the missing extra is simulated: ``sys.modules[name] = None``
makes ``import name`` raise ``ImportError`` and ``importlib.util.find_spec(name)`` return ``None``,
as on a machine where it is not installed.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import comparisons
import neighborhoods
import operators
from comparisons import cli

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: import name -> distribution name, for the experiments extra
DISTRIBUTIONS = {"matplotlib": "matplotlib", "sklearn": "scikit-learn", "skimage": "scikit-image"}
EXPERIMENT_COMMANDS = [["compare"], ["report", "somewhere"], ["figures"], ["show", "conv2d"], ["explore"]]


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in requirements}


def test_core_dependencies_are_torch_einops_rich_numpy():
    assert _names(PYPROJECT["project"]["dependencies"]) == {"torch", "einops", "rich", "numpy"}
    assert "torch>=2.13" in PYPROJECT["project"]["dependencies"]  # the version the suite runs on


def test_the_experiments_extra_holds_what_its_commands_import():
    extra = _names(PYPROJECT["project"]["optional-dependencies"]["experiments"])
    assert extra == {"matplotlib", "scikit-learn", "scikit-image"}
    assert {DISTRIBUTIONS[m] for m in cli.EXTRAS["experiments"]} <= extra


def test_one_version_for_all_three_packages(capsys):
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "neighborhoods.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", neighborhoods.__version__)
    assert operators.__version__ == comparisons.__version__ == neighborhoods.__version__
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"neighbor-zoo {neighborhoods.__version__}\n"
    assert f"[Unreleased] ({neighborhoods.__version__})" in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("missing", ["matplotlib", "sklearn"])
@pytest.mark.parametrize("argv", EXPERIMENT_COMMANDS, ids=lambda a: a[0])
def test_experiment_commands_without_the_extra_exit_2_naming_it(argv, missing, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ImportError):  # the simulation holds: the module cannot be imported
        __import__(missing)
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"neighbor-zoo {argv[0]}: error: needs the 'experiments' extra ({missing} not installed): "
                   f"pip install 'neighbor-zoo[experiments]'\n")


def test_the_gate_opens_with_the_extra(tmp_path, capsys):
    # with matplotlib and scikit-learn importable, the same command goes on to its own checks
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


LIGHT = """
import sys
for name in ("matplotlib", "sklearn", "skimage"):
    sys.modules[name] = None
from comparisons.cli import main
code = main(sys.argv[1:])
leaked = sorted(m for m in ("matplotlib", "sklearn", "skimage") if sys.modules.get(m) is not None)
print("leaked:", leaked)
sys.exit(code)
"""


def _light(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIGHT, *argv], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "160"})


def test_help_verify_list_and_bench_work_without_the_extra(tmp_path):
    help_ = _light("--help", cwd=tmp_path)
    assert help_.returncode == 0, help_.stderr
    commands = re.findall(r"^    (\w+) ", help_.stdout, re.M)
    assert commands == ["verify", "list", "compare", "report", "figures", "show", "explore", "bench"]
    verify = _light("verify", "--filter", "conv2d*", cwd=tmp_path)
    assert verify.returncode == 0 and "0 failed" in verify.stdout and "leaked: []" in verify.stdout, verify.stderr
    listing = _light("list", "conv", cwd=tmp_path)
    assert listing.returncode == 0 and "conv_nn2d" in listing.stdout and "leaked: []" in listing.stdout
    bench = _light("bench", "--operators", "conv2d", "--sizes", "8", "--min-run-time", "0.01", "--matmul-size", "64",
                   "--batch", "1", "--channels", "4", "--out", str(tmp_path / "b.json"), cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    assert "no plot: matplotlib is not installed (pip install 'neighbor-zoo[experiments]')" in bench.stdout
    assert "leaked: []" in bench.stdout
    assert (tmp_path / "b.json").stat().st_size > 0 and not (tmp_path / "b.png").exists()


def test_compare_without_the_extra_in_a_fresh_process(tmp_path):
    done = _light("compare", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "pip install 'neighbor-zoo[experiments]'" in done.stderr and "Traceback" not in done.stderr
