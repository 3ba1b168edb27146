"""``neighbor-zoo show OPERATOR``: one operator's neighbourhood of one pixel, as a PNG and a ranked table."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..usage import UsageError, int_at_least, output_file, positive_float
from .photo import IMAGES
from .setting import Setting, pixel_arg

#: rows of the terminal table (per volume for N3)
TOP = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="draw one operator's neighbourhood of a pixel of a photo",
                       description="Build OPERATOR (untrained; content-based demos compare raw pixel colours), or "
                                   "take it from a trained `compare` run (--checkpoint), take its neighborhood(x) on "
                                   "a photo, paint the query pixel's weights to a PNG and print its picks ranked, "
                                   "with their scores.")
    p.add_argument("operator", nargs="?", default=None,
                   help="a registered operator name (see `neighbor-zoo list`); with --checkpoint, optional: "
                        "which of the model's layers to show")
    p.add_argument("--image", default=Setting.image, metavar="NAME|PATH",
                   help=f"a sample photo ({', '.join(IMAGES)}) or a PNG/JPEG file, centre-cropped and resized "
                        f"to --size (default %(default)s)")
    p.add_argument("--size", type=int_at_least("--size", 4), default=Setting.size,
                   help="side of the downscaled photo, >= 4 (default %(default)s)")
    p.add_argument("--pixel", "--query", dest="pixel", type=pixel_arg("--pixel"), default=None, metavar="ROW,COL",
                   help=f"query pixel (default {Setting().pixel} at size 32, on the flower's petal)")
    p.add_argument("--k", type=int_at_least("--k", 1), default=None,
                   help="k of ConvNN (neighbours) or N3 (volumes), for the demos that take it")
    p.add_argument("--temperature", type=positive_float("--temperature"), default=None,
                   help="N3's temperature t (hot: soft averages; cold: hard k-NN)")
    p.add_argument("--slot", type=int_at_least("--slot", 0), default=None, help="one slot only (e.g. one N3 volume); default: all summed")
    p.add_argument("--checkpoint", type=Path, default=None, metavar="RUN_DIR",
                   help="a run folder of `neighbor-zoo compare` (OUT/runs/RUN_ID): show a layer of the trained "
                        "model next to the same layer untrained")
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


def load(image: str, size: int):
    """The photo ``--image`` names: a sample photo, or a PNG/JPEG file; a UsageError otherwise."""
    from .photo import load_image_file, load_photo

    try:
        return load_photo(image, size) if image in IMAGES else load_image_file(image, size)
    except ValueError as err:
        raise UsageError(f"--image: {err} (or name a sample photo: {', '.join(IMAGES)})") from None


def _overrides(args: argparse.Namespace) -> dict:
    from .demos import demo, options

    given = {name: value for name, value in (("k", args.k), ("temperature", args.temperature)) if value is not None}
    if demo(args.operator) is not None:
        refused = [f"--{name}" for name in given if name not in options(args.operator)]
        if refused:
            takes = ", ".join(f"--{o}" for o in options(args.operator)) or "neither --k nor --temperature"
            verb = "does" if len(refused) == 1 else "do"
            raise UsageError(f"{' and '.join(refused)} {verb} not apply to {args.operator} (its demo takes {takes})")
    return given


def run(args: argparse.Namespace, console: Console) -> int:
    if args.checkpoint is not None:
        from .checkpoint_view import show_checkpoint

        return show_checkpoint(args, console)
    if args.operator is None:
        raise UsageError("give an OPERATOR (see `neighbor-zoo list`), or --checkpoint RUN_DIR")
    import torch

    from .demos import build, demo
    from .maps import neighborhood_of
    from .plotting import grid, save, show_map

    _check_operator(args.operator)
    photo = load(args.image, args.size)
    pixel = args.pixel if args.pixel is not None else Setting(size=args.size).pixel
    if not all(0 <= c < n for c, n in zip(pixel, photo.size)):
        raise UsageError(f"--pixel must lie inside the {photo.size[0]} x {photo.size[1]} photo, got {pixel}")
    overrides = _overrides(args)
    with torch.no_grad():
        try:
            layer = build(args.operator, channels=3, **overrides)
        except (TypeError, ValueError) as err:
            raise UsageError(f"{args.operator} cannot be built with {overrides}: {err}") from None
        nbhd = neighborhood_of(layer, photo.features)
        if args.slot is not None and args.slot >= nbhd.num_slots:
            raise UsageError(f"--slot must be < {nbhd.num_slots}, the slots of {args.operator}, got {args.slot}")
        weights = nbhd.query_map(nbhd.query_at(pixel), slot=args.slot).double().numpy()
    d = demo(args.operator)
    title = d.title if d is not None else f"{args.operator} (random weights, seed 0)"
    if overrides:
        title += " (" + ", ".join(f"{k}={v:g}" for k, v in overrides.items()) + ")"
    fig, axes = grid(1, 2, panel=3.2)
    show_map(axes[0, 0], photo.rgb, None, pixel, f"{photo.name}, query pixel {pixel}")
    slot = "all slots" if args.slot is None else f"slot {args.slot}"
    show_map(axes[0, 1], photo.rgb, weights, pixel, f"{title}\n{slot}, total weight {weights.sum():.3g}")
    out = save(fig, args.out if args.out is not None else Path(f"{args.operator}.png"))
    print_picks(console, args.operator, layer, nbhd, photo.features, pixel, args.slot)
    console.print(f"{int((weights != 0).sum())} of {weights.size} pixels read, total weight {weights.sum():.4g}; "
                  f"wrote {out}")
    return 0


def print_picks(console: Console, name: str, layer, nbhd, x, pixel: tuple[int, int], slot: int | None) -> None:
    """The ranked table: picks (pixels, or patches) by weight, with the similarity score where the layer has one."""
    from .picks import patch_rows, pixel_rows, query_patch

    if nbhd.footprint is not None and any(s != 1 for s in nbhd.footprint.keys.size):
        rows = patch_rows(nbhd, pixel, slot, TOP)
        table = Table(title=f"{name} at pixel (row, col) = {pixel} (query patch top-left {query_patch(nbhd, pixel)}): "
                            f"patches by weight, per volume")
        for col in ("volume", "rank", "patch top-left (row, col)", "patch centre (row, col)", "weight"):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r.slot + 1), str(r.rank), str(r.top_left), str(r.centre), f"{r.weight:.4g}")
    else:
        rows, metric = pixel_rows(layer, nbhd, x, pixel, slot, TOP)
        table = Table(title=f"{name} at pixel (row, col) = {pixel}: picks ranked"
                            + (f" (score: {metric} of the selector's descriptors)" if metric else " by weight"))
        for col in ("rank", "pixel (row, col)", "weight") + ((f"score ({metric})",) if metric else ()):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r.rank), str(r.pixel), f"{r.weight:.4g}",
                          *((f"{r.score:.4g}",) if metric else ()))
    console.print(table)
