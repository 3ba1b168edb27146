"""comparisons.ablation.provenance: the environment saved with every record."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import torch

from comparisons.ablation import provenance

REPO = Path(__file__).resolve().parents[3]


def test_environment_has_every_key_and_is_json():
    env = provenance.environment("cpu", threads=3)
    assert set(provenance.KEYS) <= set(env)
    assert json.loads(json.dumps(env)) == env
    assert env["threads"] == 3 and env["device"] == "cpu"
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()
    assert env["package"].startswith("neighbor-zoo ")
    assert env["determinism"]["deterministic_algorithms"] == torch.are_deterministic_algorithms_enabled()


def test_git_commit_is_this_checkouts_head():
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        assert provenance.git_commit() is None
    else:
        assert provenance.git_commit().removesuffix("+dirty") == head.stdout.strip()


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    assert provenance.git_commit(tmp_path) is None


def test_cpu_model_reads_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    if names:
        assert provenance.cpu_model() == names[0]
    else:
        assert provenance.cpu_model()


def test_describe_prints_one_line_per_key():
    env = provenance.environment("cpu", threads=1)
    env["git_commit"] = None
    lines = provenance.describe(env)
    assert [line.split(":")[0] for line in lines] == list(provenance.KEYS)
    assert "git_commit: not a git checkout" in lines
    assert any(line.startswith("determinism: deterministic_algorithms=") for line in lines)


def test_machine_line_names_cpu_torch_and_the_short_commit():
    env = provenance.environment("cpu", threads=1)
    env["git_commit"] = "0123456789abcdef0123+dirty"
    line = provenance.machine_line(env)
    assert env["cpu"] in line and f"torch {torch.__version__}" in line and "commit 0123456789ab+dirty" in line
