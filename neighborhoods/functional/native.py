"""The C kernels beside this file, compiled on first use with the machine's C compiler and loaded with ctypes.

``top_k_scan.c`` (the top-k scan of :mod:`~neighborhoods.functional.topk`), ``tile_knn.c`` (the
k-NN search of :mod:`~neighborhoods.functional.knn` that scores and scans a tile of queries at a
time) and ``knn_rounds.c`` (the softmax rounds of :mod:`~neighborhoods.functional.continuous_knn`),
built into one library. Building needs nothing but a
C compiler (``$CC``, else ``cc``/``gcc``/``clang`` on the ``PATH``): no Python package, no torch
headers, about a second once. The library is cached under ``$NEIGHBOR_ZOO_CACHE`` (default
``$XDG_CACHE_HOME/neighbor-zoo`` or ``~/.cache/neighbor-zoo``) in a file named by a hash of the
source, the compiler's version and this CPU (it is built with ``-march=native``), so a cache shared
between machines never loads code built for another CPU.

Where no compiler is found, or it fails, or ``NEIGHBOR_ZOO_NATIVE=0`` is set (any value but ``0``
or ``1`` is a ``ValueError``), :func:`top_k_scan` and :func:`knn_rounds_forward`
are ``None`` and the callers keep their torch path, which computes the same result;
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

__all__ = ["cache_dir", "knn_rounds_backward", "knn_rounds_forward", "native_reason", "scan_selects",
           "tile_knn", "top_k_scan"]

_SOURCES = tuple(Path(__file__).with_name(name) for name in ("top_k_scan.c", "tile_knn.c", "knn_rounds.c"))
_HEADERS = tuple(Path(__file__).with_name(name) for name in ("parallel_rows.h", "top_k_row.h"))  # included by the sources: part of the build's hash
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-pthread"]
#: tried first: the kernels' threads are then torch's own OpenMP team (parallel_rows.h says why);
#: a compiler without OpenMP builds them with threads of their own
_OPENMP = ["-fopenmp"]
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
        sources = [path.read_bytes() for path in (*_SOURCES, *_HEADERS)]
        failure = ""
        for flags in ([*_FLAGS, *_OPENMP], _FLAGS):
            tag = hashlib.sha256(b"\0".join([*sources, version.encode(), _cpu().encode(), " ".join(flags).encode()]))
            target = cache_dir() / f"kernels-{tag.hexdigest()[:20]}.so"
            if target.exists():
                break
            target.parent.mkdir(parents=True, exist_ok=True)
            # built beside the target, then renamed: processes building at once never load half a file
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            done = subprocess.run([cc, *flags, *map(str, _SOURCES), "-o", tmp, "-lm"], capture_output=True,
                                  text=True, timeout=300)
            if done.returncode == 0:
                os.replace(tmp, target)
                break
            os.unlink(tmp)
            failure = f"{cc} failed on {', '.join(p.name for p in _SOURCES)}: {done.stderr.strip()[-500:]}"
        else:
            return None, failure
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not build or load the C kernels: {e}"
    for name in ("nz_top_k_scan_f32", "nz_top_k_scan_f64"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_int64]
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix in ("f32", "f64"):
        fn = getattr(lib, f"nz_tile_knn_{suffix}")
        fn.restype = ctypes.c_int
        fn.argtypes = [p, p, p, p, p, i64, i64, i64, i64, i64, p, p, i64]
        getattr(lib, f"nz_tile_knn_panel_{suffix}").restype = i64
        fn = getattr(lib, f"nz_knn_rounds_forward_{suffix}")
        fn.restype = ctypes.c_int
        fn.argtypes = [p, p, i64, i64, i64, i64, i32, p, p, i64]
        fn = getattr(lib, f"nz_knn_rounds_backward_{suffix}")
        fn.restype = ctypes.c_int
        fn.argtypes = [p, p, p, p, i64, i64, i64, i64, i32, p, p, i64]
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


def _threads(work: int) -> int:
    """Threads for a C call over ``work`` numbers: one per 64 Ki at most (starting one costs about that much work)."""
    return max(1, min(torch.get_num_threads(), work >> 16))


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
        threads = _threads(rows * n)
        getattr(lib, _SCANS[scores.dtype])(scores.data_ptr(), rows, n, k, values.data_ptr(), idx.data_ptr(), threads)
    return values, idx


def tile_knn(queries: Tensor, keys: Tensor, k: int, query_sq: Tensor | None = None, key_sq: Tensor | None = None,
             exclude: Tensor | None = None) -> tuple[Tensor, Tensor] | None:
    """Every query's ``k`` largest scores against all keys, scored and scanned a tile at a time (tile_knn.c).

    The score is the dot product ``<q, k>``, or with ``query_sq`` ``(B, Nq)`` and ``key_sq`` ``(B, Nk)``
    (the squared norms) the negated squared distance ``-max(0, |q|^2 + |k|^2 - 2 <q, k>)``; ``exclude``
    ``(B, Nq)`` long names one key per query that scores ``-inf``. ``queries`` ``(B, Nq, D)`` and
    ``keys`` ``(B, Nk, D)`` of one dtype, float32 or float64, on the CPU; values only (no autograd).

    Returns ``(values, indices)``, ``(B, Nq, k)`` each, in the scan's order (:func:`top_k_scan`):
    rows whose k-th value is ``-inf`` or NaN are left for the caller to settle. ``None`` where the
    kernel cannot take the call (another dtype or device, ``k`` outside ``1..Nk``, an excluded index
    outside ``0..Nk-1``, no compiled library): the caller keeps its blocked search.
    """
    if (queries.device.type != "cpu" or queries.dtype not in _SCANS or keys.dtype != queries.dtype
            or keys.device.type != "cpu" or queries.ndim != 3 or keys.ndim != 3
            or not 1 <= k <= keys.shape[1] or torch.compiler.is_compiling()):
        return None
    lib = _library()
    if lib is None:
        return None
    suffix = _ROUNDS[queries.dtype]
    b, nq, d = queries.shape
    nk = keys.shape[1]
    width = getattr(lib, f"nz_tile_knn_panel_{suffix}")()
    panels = -(-nk // width)
    # keys packed as (B, panels, D, width): a panel's D x width block is what the kernel streams
    packed = keys.new_zeros(b, panels * width, d)
    packed[:, :nk] = keys
    packed = packed.view(b, panels, width, d).transpose(2, 3).contiguous()
    queries = queries.contiguous()
    if query_sq is not None and key_sq is not None:
        query_sq = query_sq.reshape(b, nq).contiguous()
        padded_sq = keys.new_zeros(b, panels * width)
        padded_sq[:, :nk] = key_sq.reshape(b, nk)
        key_sq = padded_sq
    else:
        query_sq = key_sq = None
    if exclude is not None:
        exclude = exclude.expand(b, nq).contiguous()
    values = queries.new_empty(b, nq, k)
    idx = torch.empty(b, nq, k, dtype=torch.long)
    if b * nq:
        failed = getattr(lib, f"nz_tile_knn_{suffix}")(
            queries.data_ptr(), packed.data_ptr(), None if query_sq is None else query_sq.data_ptr(),
            None if key_sq is None else key_sq.data_ptr(), None if exclude is None else exclude.data_ptr(),
            b, nq, nk, d, k, values.data_ptr(), idx.data_ptr(), _threads(b * nq * nk * max(d, 1) // 64))
        if failed == 1:
            raise MemoryError(f"tile_knn.c could not allocate its score rows ({nk} keys)")
        if failed:
            return None
    return values, idx


_ROUNDS = {torch.float32: "f32", torch.float64: "f64"}


def _rounds_temperature(t: Tensor, rows: int) -> tuple[Tensor, int] | None:
    """``t`` as a contiguous vector the C rounds read with a row stride (0: one shared, 1: one per row)."""
    if t.numel() == 1 and t.ndim == 0:
        return t.reshape(1), 0
    if t.numel() == rows and rows > 0:
        return t.contiguous(), 1
    return None


def knn_rounds_forward(logits: Tensor, t: Tensor, k: int, by_t: bool) -> tuple[Tensor, Tensor] | None:
    """The ``k`` softmax rounds of continuous k-NN (knn_rounds.c): weights and log-weights ``(..., M, k)``.

    ``logits`` ``(..., M)`` are the (masked) scores over the temperature, ``t`` the temperature
    as :func:`~neighborhoods.functional.continuous_knn.continuous_knn` holds it (0-d, or one per
    row with a trailing 1). ``None`` where the kernel cannot take them (not float32/float64 on
    the CPU, dtypes that differ, a temperature of another shape, a traced call, no compiled
    library): the caller keeps its torch path. Values only: no autograd.
    """
    if (logits.device.type != "cpu" or logits.dtype not in _ROUNDS or t.dtype != logits.dtype
            or t.device.type != "cpu" or logits.ndim < 1 or torch.compiler.is_compiling()):
        return None
    *lead, m = logits.shape
    rows = logits.numel() // m if m else 0
    temperature = _rounds_temperature(t.detach(), rows)
    lib = _library() if temperature is not None else None
    if lib is None or temperature is None:
        return None
    tv, stride = temperature
    x = logits.detach().contiguous()
    w = x.new_empty(*lead, m, k)
    log_w = x.new_empty(*lead, m, k)
    if rows and m and getattr(lib, f"nz_knn_rounds_forward_{_ROUNDS[x.dtype]}")(
            x.data_ptr(), tv.data_ptr(), stride, rows, m, k, int(by_t), w.data_ptr(), log_w.data_ptr(),
            _threads(rows * m * k)):
        raise MemoryError(f"knn_rounds.c could not allocate its row buffers (rows of {m} candidates)")
    return w, log_w


def knn_rounds_backward(grad: Tensor, w: Tensor, log_w: Tensor, t: Tensor, by_t: bool,
                        want_t: bool) -> tuple[Tensor, Tensor | None] | None:
    """The gradients of the logits ``(..., M)`` and (``want_t``) of ``t`` from the weights' gradient ``(..., M, k)``.

    ``w`` and ``log_w`` are what :func:`knn_rounds_forward` returned. ``None`` where the kernel
    cannot take them (as there): the caller differentiates its torch path instead.
    """
    if (grad.device.type != "cpu" or grad.dtype not in _ROUNDS or any(x.dtype != grad.dtype for x in (w, log_w, t))
            or grad.shape != w.shape or torch.compiler.is_compiling()):
        return None
    *lead, m, k = w.shape
    rows = w.numel() // (m * k) if m * k else 0
    temperature = _rounds_temperature(t.detach(), rows)
    lib = _library() if temperature is not None else None
    if lib is None or temperature is None:
        return None
    tv, stride = temperature
    g_logits = w.new_empty(*lead, m)
    g_rows = w.new_zeros(rows) if want_t and by_t else None
    grad, w, log_w = (x.detach().contiguous() for x in (grad, w, log_w))  # held until the call returns
    if rows and m and getattr(lib, f"nz_knn_rounds_backward_{_ROUNDS[w.dtype]}")(
            grad.data_ptr(), w.data_ptr(), log_w.data_ptr(), tv.data_ptr(),
            stride, rows, m, k, int(by_t), g_logits.data_ptr(), g_rows.data_ptr() if g_rows is not None else None,
            _threads(rows * m * k)):
        raise MemoryError(f"knn_rounds.c could not allocate its row buffers (rows of {m} candidates)")
    if g_rows is None:  # not wanted, or the 'logits' update: t only scales the first logits, outside these rounds
        return g_logits, None
    return g_logits, (g_rows.sum().reshape(t.shape) if stride == 0 else g_rows.reshape(t.shape))
