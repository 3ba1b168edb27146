"""ConvNN2d at this checkout against the same layer at an earlier git revision, in one process.

The earlier revision's ``neighborhoods`` package is extracted with ``git archive`` and imported
under another name (it only uses relative imports), so both layers run side by side with the
same weights on the same inputs; runs are interleaved (before, after, before, ...) so that load
from other processes hits both alike, and the medians (and minima: load only adds time) are reported. Before timing, the script
checks that both select the same neighbours and how far apart their outputs are.

    .venv/bin/python scripts/bench_before_after.py --rev dacf156 --sizes 32 64 --repeats 5
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neighborhoods import NeighborAggregator  # noqa: E402
from neighborhoods.combiners import Conv1D  # noqa: E402
from neighborhoods.selectors import HardKNN  # noqa: E402


def import_revision(rev: str, into: Path):
    """The ``neighborhoods`` package of git revision ``rev``, imported as ``neighborhoods_before``."""
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "neighborhoods"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    spec = importlib.util.spec_from_file_location("neighborhoods_before", into / "neighborhoods" / "__init__.py",
                                                  submodule_search_locations=[str(into / "neighborhoods")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["neighborhoods_before"] = module
    spec.loader.exec_module(module)
    return module


def build(package, channels: int, k: int, block_size: int | None):
    kwargs = {} if block_size is None else {"block_size": block_size}
    selector = package.selectors.HardKNN(k, metric="cosine", **kwargs)
    return package.NeighborAggregator(selector, package.combiners.Conv1D(channels, channels, k))


def timed(layer, x: torch.Tensor, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        layer(x).sum().backward()
    else:
        with torch.no_grad():
            layer(x)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", required=True, help="git revision to compare against")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="image sides")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed runs per variant")
    parser.add_argument("--before-block-size", type=int, default=1024,
                        help="the old layer's block_size; 0 for that revision's own default")
    parser.add_argument("--out", type=Path, help="write the raw timings here (JSON)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        before_pkg = import_revision(args.rev, Path(tmp))
        after = NeighborAggregator(HardKNN(args.k, metric="cosine"), Conv1D(args.channels, args.channels, args.k))
        before = build(before_pkg, args.channels, args.k, args.before_block_size or None)
        before.load_state_dict(after.state_dict())
        results = []
        for size in args.sizes:
            x = torch.randn(args.batch, args.channels, size, size)
            with torch.no_grad():
                same_index = torch.equal(before.neighborhood(x).index, after.neighborhood(x).index)
                max_diff = (before(x) - after(x)).abs().max().item()
            print(f"{size}x{size}: same neighbours {same_index}, max |output difference| {max_diff:.3g}", flush=True)
            for backward in (False, True):
                times = {"before": [], "after": []}
                timed(before, x, backward), timed(after, x, backward)  # warm-up
                for _ in range(args.repeats):
                    for name, layer in (("before", before), ("after", after)):
                        times[name].append(timed(layer, x, backward))
                row = {"size": size, "backward": backward, "same_index": same_index, "max_diff": max_diff,
                       **{f"{n}_s": t for n, t in times.items()},
                       **{f"{n}_median_s": statistics.median(t) for n, t in times.items()},
                       **{f"{n}_min_s": min(t) for n, t in times.items()}}
                row["speedup"] = row["before_median_s"] / row["after_median_s"]
                results.append(row)
                mode = "forward+backward" if backward else "forward"
                print(f"  {mode:17s} before {row['before_median_s']:.3f} s  after {row['after_median_s']:.3f} s  "
                      f"speed-up {row['speedup']:.2f}x  (medians of {args.repeats}); minima "
                      f"{row['before_min_s']:.3f} / {row['after_min_s']:.3f} s", flush=True)
    if args.out is not None:
        tmp_path = args.out.with_suffix(".tmp")
        tmp_path.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                       indent=1))
        os.replace(tmp_path, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
