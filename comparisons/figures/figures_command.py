"""``neighbor-zoo figures``: regenerate every figure of the docs from code."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress

from ..usage import int_at_least, output_folder
from .photo import IMAGES
from .setting import Setting


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("figures", help="regenerate every figure of the docs",
                       description="Draw every docs figure (what each operator selects on a sample photo, the N3 "
                                   "relaxation, the spectrum, the saved ablation and benchmark results) as PNGs.")
    p.add_argument("--out", type=output_folder("--out"), default=Path("docs/figures"), help="output folder (default docs/figures)")
    p.add_argument("--image", choices=IMAGES, default=Setting.image, help="sample photo (default %(default)s)")
    p.add_argument("--size", type=int_at_least("--size", 4), default=Setting.size,
                   help="side of the downscaled photo in pixels, >= 4 (default %(default)s)")
    p.add_argument("--results", type=Path, default=Setting.results,
                   help="folder of saved results to plot (default %(default)s)")
    p.set_defaults(run=run, extra="experiments")


def run(args: argparse.Namespace, console: Console) -> int:
    from .jobs import JOBS  # matplotlib and friends load only when figures are drawn

    setting = Setting(image=args.image, size=args.size, results=args.results)
    written: list[Path] = []
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress, torch.no_grad():
        task = progress.add_task("figures", total=len(JOBS))
        for job in JOBS:
            progress.update(task, description=job.name)
            written += job.draw(args.out, setting)
            progress.advance(task)
    for path in written:
        console.print(f"wrote {path}")
    console.print(f"{len(written)} figures in {time.perf_counter() - start:.1f} s")
    return 0
