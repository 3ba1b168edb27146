"""``neighbor-zoo explore``: write the interactive explorer, one self-contained HTML page."""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib import resources
from pathlib import Path

from rich.console import Console

from ..usage import UsageError, int_at_least, output_file, positive_int
from .photo import IMAGES
from .setting import Setting, pixel_arg

PLACEHOLDER = "/*DATA*/"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="write the interactive explorer (one self-contained HTML page)",
                       description="Precompute every demo operator's query_map on a grid of query pixels of a sample "
                                   "photo and write one HTML page (no server, no network) where clicking a pixel "
                                   "shows what each operator reads for it: a colour bar per panel, a shared-scale "
                                   "toggle, an A/B difference view, and controls for ConvNN's k, the hybrid lambda "
                                   "and N3's temperature (precomputed variants).")
    p.add_argument("--out", type=output_file("--out"), default=Path("neighbor-zoo-explorer.html"),
                   help="HTML file to write (default %(default)s)")
    p.add_argument("--image", choices=IMAGES, default=Setting.image, help="sample photo (default %(default)s)")
    p.add_argument("--size", type=int_at_least("--size", 4), default=Setting.size,
                   help="side of the downscaled photo, >= 4 (default %(default)s)")
    p.add_argument("--step", type=positive_int("--step"), default=2,
                   help="precompute every STEP-th row and column as a query pixel (default %(default)s)")
    p.add_argument("--query", type=pixel_arg("--query"), default=None, metavar="ROW,COL",
                   help=f"the pixel the page opens on; the grid of query pixels passes through it "
                        f"(default {Setting().pixel}, the figures' query pixel)")
    p.set_defaults(run=run, extra="experiments")


def render(data: dict) -> str:
    """The page with ``data`` embedded as JSON (``</`` escaped so it cannot close the script tag)."""
    template = resources.files(__package__).joinpath("explorer.html").read_text(encoding="utf-8")
    if template.count(PLACEHOLDER) != 1:
        raise RuntimeError(f"explorer.html must contain {PLACEHOLDER} exactly once")
    return template.replace(PLACEHOLDER, json.dumps(data, separators=(",", ":")).replace("</", "<\\/"))


def run(args: argparse.Namespace, console: Console) -> int:
    if args.step > args.size:
        raise UsageError(f"--step must be <= --size={args.size} (at least one query row and column), got {args.step}")
    if args.query is not None and not all(0 <= c < args.size for c in args.query):
        raise UsageError(f"--query must lie inside the {args.size} x {args.size} photo, got {args.query}")
    start = time.perf_counter()
    with console.status("computing query maps"):
        html = write(args.out, Setting(image=args.image, size=args.size), args.step, args.query)
    console.print(f"wrote {args.out} ({len(html) / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s; "
                  f"open it in a browser")
    return 0


def write(out: Path, setting: Setting, step: int = 2, query: tuple[int, int] | None = None) -> str:
    """Compute the page and write it to ``out`` atomically; returns the HTML."""
    from .explorer import page_data

    html = render(page_data(setting, step, query))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return html
