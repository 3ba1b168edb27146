"""``neighbor-zoo show OPERATOR``: one operator's neighbourhood of one pixel, as a PNG and a table."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..usage import UsageError, int_at_least, output_file
from .photo import IMAGES
from .setting import Setting

#: weights listed in the terminal summary
TOP = 10


def _pixel(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"--query must be ROW,COL (two integers), got {text!r}")
    return int(parts[0]), int(parts[1])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="draw one operator's neighbourhood of a pixel of a sample photo",
                       description="Build OPERATOR (untrained; content-based demos compare raw pixel colours), take "
                                   "its neighborhood(x) on a sample photo, paint the query pixel's weights to a PNG "
                                   "and print the largest ones.")
    p.add_argument("operator", help="a registered operator name (see `neighbor-zoo list`)")
    p.add_argument("--image", choices=IMAGES, default=Setting.image, help="sample photo (default %(default)s)")
    p.add_argument("--size", type=int_at_least("--size", 4), default=Setting.size,
                   help="side of the downscaled photo, >= 4 (default %(default)s)")
    p.add_argument("--query", type=_pixel, default=None, metavar="ROW,COL",
                   help=f"query pixel (default {Setting().pixel}, on the flower's petal)")
    p.add_argument("--slot", type=int_at_least("--slot", 0), default=None, help="one slot only (e.g. one N3 volume); default: all summed")
    p.add_argument("--out", type=output_file("--out"), default=None, help="PNG to write (default OPERATOR.png)")
    p.set_defaults(run=run, extra="experiments")


def _check_operator(name: str) -> None:
    """A registered operator that takes images (the photo is ``(1, 3, H, W)``), else a UsageError saying why."""
    import operators

    try:
        layout = operators.info(name).layout
    except ValueError as err:
        raise UsageError(str(err).split(";")[0] + "; see `neighbor-zoo list`") from None
    if layout != "(B, C, H, W)":
        raise UsageError(f"{name} takes {layout} inputs, not images: show paints a pixel's neighbourhood on a "
                         f"photo, so it needs a 2-D operator (`neighbor-zoo list 2d`)")


def run(args: argparse.Namespace, console: Console) -> int:
    import numpy as np
    import torch

    from .demos import build, demo
    from .maps import neighborhood_of
    from .photo import load_photo
    from .plotting import grid, save, show_map

    _check_operator(args.operator)
    photo = load_photo(args.image, args.size)
    pixel = args.query if args.query is not None else Setting(size=args.size).pixel
    if not all(0 <= c < n for c, n in zip(pixel, photo.size)):
        raise UsageError(f"--query must lie inside the {photo.size[0]} x {photo.size[1]} photo, got {pixel}")
    with torch.no_grad():
        layer = build(args.operator, channels=3)
        nbhd = neighborhood_of(layer, photo.features)
        query = nbhd.query_at(pixel)
        if args.slot is not None and args.slot >= nbhd.num_slots:
            raise UsageError(f"--slot must be < {nbhd.num_slots}, the slots of {args.operator}, got {args.slot}")
        weights = nbhd.query_map(query, slot=args.slot).double().numpy()
    d = demo(args.operator)
    title = d.title if d is not None else f"{args.operator} (random weights, seed 0)"
    fig, axes = grid(1, 2, panel=3.2)
    show_map(axes[0, 0], photo.rgb, None, pixel, f"{args.image}, query pixel {pixel}")
    slot = "all slots" if args.slot is None else f"slot {args.slot}"
    show_map(axes[0, 1], photo.rgb, weights, pixel, f"{title}\n{slot}, total weight {weights.sum():.3g}")
    out = save(fig, args.out if args.out is not None else Path(f"{args.operator}.png"))

    order = np.argsort(-np.abs(weights), axis=None, kind="stable")[:TOP]
    table = Table(title=f"{args.operator}, query {query}: largest |weights|")
    for col in ("pixel (row, col)", "weight"):
        table.add_column(col)
    for flat in order:
        if weights.flat[flat] == 0:
            break
        table.add_row(str(tuple(int(i) for i in np.unravel_index(flat, weights.shape))), f"{weights.flat[flat]:.4g}")
    console.print(table)
    console.print(f"{int((weights != 0).sum())} of {weights.size} pixels read, total weight {weights.sum():.4g}; "
                  f"wrote {out}")
    return 0
