"""``neighbor-zoo bench``: time every operator against torch's native op and the naive all-pairs form."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..usage import UsageError, output_file, positive_float, positive_int
from .report import growth_table, plot, profile_table, table, write_json
from .runner import plan, reusable_rows, run_bench, settings_meta
from .timing import MODES
from .workloads import WORKLOADS, Settings

#: defaults chosen to finish in under 5 minutes on a 2-core CPU; larger runs via the flags
DEFAULT_OPERATORS = "conv2d,conv_nn2d,conv_nn2d_random,conv_nn2d_spatial,self_attention2d,n3_block2d"
DEFAULT_SIZES = {"cpu": "16,32,64", "cuda": "16,32,64,128,256"}
DEFAULT_N3_SIZES = {"cpu": "80", "cuda": "80,160"}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown operators {unknown or text!r}; choose from {', '.join(WORKLOADS)}")
    return names


def _run(args: argparse.Namespace, console: Console) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    sizes = args.sizes or _ints(DEFAULT_SIZES[device.type])
    n3_sizes = args.n3_sizes or _ints(DEFAULT_N3_SIZES[device.type])
    modes = MODES if args.backward else MODES[:1]
    settings = Settings(batch=args.batch, channels=args.channels, k=args.k, device=device, dtype=DTYPES[args.dtype],
                        memory_cap=int(args.memory_cap_gb * 2**30), peer_dir=args.peer_dir, seed=args.seed)
    if args.peer_dir is not None and "conv_nn2d" not in args.operators:
        console.print("[yellow]--peer-dir is used by the conv_nn2d workload, which is not selected[/yellow]")
    # one step per measurement (and per workload setup), the matmul limit at the start and after each mode
    per_workload = {op: 1 + len(modes) * (4 + (op in ("conv2d", "self_attention2d", "conv_nn2d"))
                                          + (op == "conv_nn2d" and args.peer_dir is not None))
                    for op in args.operators}
    total = 1 + sum(per_workload[op] + args.profile for op, _ in plan(args.operators, sizes, n3_sizes))
    out = Path(args.out)
    previous = None
    if args.resume and out.exists():
        try:
            previous = json.loads(out.read_text())
        except json.JSONDecodeError as e:
            raise UsageError(f"--resume: {out} is not a JSON benchmark ({e}); pass another --out or drop --resume") \
                from None
        try:
            reusable_rows(previous, settings_meta(settings, args.min_run_time))
        except ValueError as e:
            raise UsageError(f"--resume: {e}; pass another --out or drop --resume") from None
        console.print(f"resuming from {out}: {len(previous.get('results', []))} rows kept")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("bench", total=total)

        def step(description: str) -> None:
            progress.update(task, description=description)
            progress.advance(task)

        data = run_bench(settings, args.operators, sizes, n3_sizes, modes, min_run_time=args.min_run_time,
                         matmul_size=args.matmul_size, step=step, previous=previous,
                         save=lambda partial: write_json(out, partial), profile=args.profile)
    write_json(out, data)
    plotted = not args.no_plot and importlib.util.find_spec("matplotlib") is not None
    if plotted:
        plot(data, out.with_suffix(".png"))
    elif not args.no_plot:  # the core install times everything; only the drawing needs the extra
        console.print("note: no plot: matplotlib is not installed (pip install 'neighbor-zoo[experiments]')",
                      markup=False)
    console.print(table(data))
    if data["growth"]:
        console.print(growth_table(data))
    if data.get("profile"):
        console.print(profile_table(data))
    for note in data["notes"]:
        console.print(f"note: {note}")
    console.print(f"x baseline: time / the native op's (conv2d, self_attention2d) or the naive all-pairs form's "
                  f"time; peak memory: {data['meta']['memory_method']}")
    console.print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if plotted else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="time every operator against torch's native op and the naive all-pairs form",
        description="Time each operator's fast path, its reference path, torch's native op (F.conv2d, "
                    "F.scaled_dot_product_attention) and the naive all-pairs ConvNN / N3 forms side by side; "
                    "report time, ratio, peak memory, TFLOP/s, recall@k and growth exponents; write JSON and a plot.")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    p.add_argument("--sizes", type=_ints, default=None,
                   help=f"image sizes H = W, comma-separated (default cpu {DEFAULT_SIZES['cpu']}, "
                        f"cuda {DEFAULT_SIZES['cuda']})")
    p.add_argument("--n3-sizes", type=_ints, default=None,
                   help=f"image sizes for n3_block2d, whose 10x10 / stride 5 patches must tile the image "
                        f"(default cpu {DEFAULT_N3_SIZES['cpu']}, cuda {DEFAULT_N3_SIZES['cuda']})")
    p.add_argument("--operators", type=_names, default=_names(DEFAULT_OPERATORS),
                   help=f"comma-separated, from {', '.join(WORKLOADS)} (default all)")
    p.add_argument("--backward", action="store_true", help="also time forward + backward")
    p.add_argument("--batch", type=positive_int("--batch"), default=8, help="B (default 8)")
    p.add_argument("--channels", type=positive_int("--channels"), default=64, help="C (default 64)")
    p.add_argument("--k", type=positive_int("--k"), default=9, help="ConvNN's k (default 9; N3 keeps the paper's 7)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="default float32")
    p.add_argument("--memory-cap-gb", type=positive_float("--memory-cap-gb"), default=4.0,
                   help="skip naive forms whose estimated peak exceeds this (default 4 GiB)")
    p.add_argument("--min-run-time", type=positive_float("--min-run-time"), default=0.5, help="seconds of timed calls per variant (default 0.5)")
    p.add_argument("--matmul-size", type=positive_int("--matmul-size"), default=2048, help="size of the matmul that measures the limit")
    p.add_argument("--peer-dir", default=None,
                   help="a local clone of mingikang31/Convolutional-Nearest-Neighbor: time its Conv2d_NN too")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=output_file("--out"), default="bench.json", help="JSON output; the plot goes next to it as .png")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in --out (written after every workload) when their settings match, "
                        "and measure only the rest")
    p.add_argument("--profile", action="store_true",
                   help="also profile each operator's forward (fast and reference paths): the share of time in "
                        "similarity, selection, gathering, combining (and fused kernels), as a table and in the JSON")
    p.add_argument("--no-plot", action="store_true",
                   help="skip the matplotlib plot (skipped, saying so, without the experiments extra)")
    p.set_defaults(run=_run)
