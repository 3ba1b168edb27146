"""The C kernels beside this file, compiled on first use with the machine's C compiler and loaded with ctypes.

Only :mod:`top_k_scan.c <neighborhoods.functional.topk>` for now. Building needs nothing but a
C compiler (``$CC``, else ``cc``/``gcc``/``clang`` on the ``PATH``): no Python package, no torch
headers, about a second once. The library is cached under ``$NEIGHBOR_ZOO_CACHE`` (default
``$XDG_CACHE_HOME/neighbor-zoo`` or ``~/.cache/neighbor-zoo``) in a file named by a hash of the
source, the compiler's version and this CPU (it is built with ``-march=native``), so a cache shared
between machines never loads code built for another CPU.

Where no compiler is found, or it fails, or ``NEIGHBOR_ZOO_NATIVE=0`` is set (any value but ``0``
or ``1`` is a ``ValueError``), :func:`top_k_scan`
is ``None`` and the callers keep their torch path, which computes the same result;
:func:`native_reason` says why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["cache_dir", "native_reason", "scan_selects", "top_k_scan"]

_SOURCE = Path(__file__).with_name("top_k_scan.c")
_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-pthread"]
_lock = threading.Lock()
_state: dict[str, object] = {}  # "lib": the loaded CDLL or None, "reason": why not


def cache_dir() -> Path:
    """Where compiled kernels are kept (module docstring)."""
    if os.environ.get("NEIGHBOR_ZOO_CACHE"):
        return Path(os.environ["NEIGHBOR_ZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neighbor-zoo"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return "".join(line for line in f if line.startswith(("model name", "flags")))[:4096]
    except OSError:
        return platform.processor() or platform.machine()


def _build() -> tuple[ctypes.CDLL | None, str | None]:
    switch = os.environ.get("NEIGHBOR_ZOO_NATIVE", "1")
    if switch not in ("0", "1"):
        raise ValueError(f"the environment variable NEIGHBOR_ZOO_NATIVE must be '0' (torch path) or '1' "
                         f"(the C kernels, default), got {switch!r}")
    if switch == "0":
        return None, "NEIGHBOR_ZOO_NATIVE=0 is set"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler found ($CC, cc, gcc or clang on the PATH)"
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
        source = _SOURCE.read_bytes()
        tag = hashlib.sha256(b"\0".join([source, version.encode(), _cpu().encode(), " ".join(_FLAGS).encode()]))
        target = cache_dir() / f"top_k_scan-{tag.hexdigest()[:20]}.so"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # built beside the target, then renamed: processes building at once never load half a file
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            done = subprocess.run([cc, *_FLAGS, str(_SOURCE), "-o", tmp], capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                os.unlink(tmp)
                return None, f"{cc} failed on {_SOURCE.name}: {done.stderr.strip()[-500:]}"
            os.replace(tmp, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not build or load {_SOURCE.name}: {e}"
    for name in ("nz_top_k_scan_f32", "nz_top_k_scan_f64"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_int64]
    return lib, None


def _library() -> ctypes.CDLL | None:
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                _state["lib"], _state["reason"] = _build()
    return _state["lib"]  # type: ignore[return-value]


def native_reason() -> str | None:
    """Why the C kernels are not in use (``None`` when they are); builds them on first call."""
    _library()
    return _state["reason"]  # type: ignore[return-value]


_SCANS = {torch.float32: "nz_top_k_scan_f32", torch.float64: "nz_top_k_scan_f64"}


def scan_selects(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether :func:`top_k_scan` takes eager blocks of this device and dtype (compiling, it never does)."""
    return (torch.device(device).type == "cpu" and dtype in _SCANS and not torch.compiler.is_compiling()
            and _library() is not None)


def top_k_scan(scores: Tensor, k: int) -> tuple[Tensor, Tensor] | None:
    """The k largest entries of each row of a ``(R, n)`` CPU block, by one scan per row (top_k_scan.c).

    ``None`` where the kernel cannot take this block (not a contiguous float32/float64 CPU
    tensor, ``k > n``, or no compiled library): the caller keeps its torch path. The values are
    read from ``scores`` as they are (no autograd), the winners sorted by (value desc, index asc).
    Rows whose k-th value is ``-inf`` or NaN are not resolved (top_k_scan.c says why): the caller
    recomputes them. Runs on up to ``torch.get_num_threads()`` threads.
    """
    if (scores.device.type != "cpu" or scores.dtype not in _SCANS or scores.dim() != 2
            or not scores.is_contiguous() or not 1 <= k <= scores.shape[1]):
        return None
    lib = _library()
    if lib is None:
        return None
    rows, n = scores.shape
    values = scores.new_empty(rows, k)
    idx = torch.empty(rows, k, dtype=torch.long)
    if rows:
        # a thread per 64 Ki entries at most: starting one costs about what scanning that many does
        threads = max(1, min(torch.get_num_threads(), rows * n >> 16))
        getattr(lib, _SCANS[scores.dtype])(scores.data_ptr(), rows, n, k, values.data_ptr(), idx.data_ptr(), threads)
    return values, idx
