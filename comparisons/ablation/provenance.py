"""What produced a result: package, commit, torch, Python, OS, CPU, device, threads, determinism.

:func:`environment` is saved with every record of a ``compare`` run, as MLflow and W&B save a
run's system information, so a table can say which machine and code made it;
:func:`describe` renders it as the lines printed under a report's table.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGE = "neighbor-zoo"
#: the keys of :func:`environment`, in the order :func:`describe` prints them
KEYS = ("package", "git_commit", "torch", "python", "os", "cpu", "cpu_count", "device", "threads", "determinism")


def package_version() -> str:
    """The installed distribution's version, else the one in the checkout's ``pyproject.toml``."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        for line in pyproject.read_text().splitlines():
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    return "unknown"


def git_commit(folder: Path | None = None) -> str | None:
    """``HEAD``'s hash of the checkout holding this package (``+dirty`` with uncommitted changes to
    tracked files), or ``None`` outside a git checkout or without git."""
    folder = folder or Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The CPU's model name: ``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name(device: torch.device | str) -> str:
    """``'cpu'``, or ``'cuda:0 (NVIDIA H100 80GB HBM3)'``."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def determinism() -> dict[str, Any]:
    """The settings that decide whether a rerun computes the same numbers."""
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


def environment(device: torch.device | str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Everything in :data:`KEYS` for a run on ``device`` with ``threads`` torch CPU threads
    (default: the current ``torch.get_num_threads()``); JSON-able."""
    return {"package": f"{PACKAGE} {package_version()}", "git_commit": git_commit(),
            "torch": torch.__version__, "python": platform.python_version(),
            "os": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "device": device_name(device), "threads": threads if threads is not None else torch.get_num_threads(),
            "determinism": determinism(), "executable": sys.executable}


def describe(env: dict[str, Any]) -> list[str]:
    """One ``key: value`` line per :data:`KEYS` entry (``git_commit: not a git checkout`` when absent)."""
    lines = []
    for key in KEYS:
        value = env.get(key)
        if key == "git_commit" and value is None:
            value = "not a git checkout"
        elif key == "determinism" and isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"{key}: {value if value is not None else 'unknown'}")
    return lines


def machine_line(env: dict[str, Any]) -> str:
    """One line for under a table: CPU, cores, device, threads, torch, Python, OS, commit."""
    commit = env.get("git_commit") or "not a git checkout"
    return (f"{env.get('cpu', '?')} ({env.get('cpu_count', '?')} cores), device {env.get('device', '?')}, "
            f"{env.get('threads', '?')} torch thread(s) per process, torch {env.get('torch', '?')}, "
            f"Python {env.get('python', '?')}, {env.get('os', '?')}, {env.get('package', '?')} at commit "
            f"{commit[:12]}{'+dirty' if commit.endswith('+dirty') else ''}")
