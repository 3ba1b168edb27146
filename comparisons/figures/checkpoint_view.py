"""``neighbor-zoo show --checkpoint RUN_DIR``: a trained ``compare`` model's layer, learned against untrained.

``compare`` saves every run under ``OUT/runs/<run id>/`` (records and a checkpoint);
:func:`comparisons.ablation.load_run` rebuilds the model exactly as training built it (the
same seed, so the same initial weights), once as initialised and once with the saved
weights. Both see the task's first test image; a forward pre-hook catches what the chosen
layer receives, and its ``neighborhood(x)`` is drawn for one query pixel: what training
changed in the selection.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from ..usage import UsageError


def rebuild(run_dir: Path):
    """``(run, untrained model, trained model, last record, epoch)`` of one ``compare`` run folder."""
    from comparisons.ablation import load_run

    try:
        loaded = load_run(run_dir)
    except ValueError as err:
        raise UsageError("--checkpoint: " + str(err)) from None
    return loaded.run, loaded.untrained, loaded.trained, loaded.record, loaded.epoch


def layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's layers that have a ``neighborhood(x)``, by module name."""
    return {name: m for name, m in model.named_modules() if callable(getattr(m, "neighborhood", None))}


def layer_input(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """What the module ``name`` receives when ``model`` runs on ``x``."""
    seen: list[torch.Tensor] = []
    handle = dict(model.named_modules())[name].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]


def show_checkpoint(args: argparse.Namespace, console: Console) -> int:
    from .picks import pixel_rows
    from .plotting import grid, save, show_map

    run, untrained, trained, record, epoch = rebuild(args.checkpoint)
    found = layers(trained)
    if not found:
        raise UsageError(f"--checkpoint: the {run.spec.label!r} model has no layer with a neighborhood(x) to show")
    name = args.operator if args.operator is not None else next(iter(found))
    if name not in found:
        raise UsageError(f"OPERATOR with --checkpoint names one of the model's layers: {', '.join(found)}; "
                         f"got {name!r}")
    task = run.sweep.make_task()
    x = next(iter(task.test_batches(1))).x[:1]
    inputs = {"untrained": layer_input(untrained, name, x), "trained": layer_input(trained, name, x)}
    h, w = inputs["trained"].shape[-2:]
    pixel = args.pixel if args.pixel is not None else (h // 2, w // 2)
    if not (0 <= pixel[0] < h and 0 <= pixel[1] < w):
        raise UsageError(f"--pixel must lie inside the layer's {h} x {w} input grid, got {pixel}")
    grey = F.interpolate(x.double().mean(1, keepdim=True), size=(h, w), mode="area")[0, 0].numpy()
    grey = (grey - grey.min()) / max(grey.max() - grey.min(), 1e-12)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    fig, axes = grid(1, 3, panel=3.0)
    show_map(axes[0, 0], rgb, None, pixel, f"{task.name} test image 0\n(at the layer's {h} x {w} grid)")
    picks = {}
    for ax, (which, model) in zip(axes[0, 1:], (("untrained", untrained), ("trained", trained))):
        layer = dict(model.named_modules())[name]
        with torch.no_grad():
            nbhd = layer.neighborhood(inputs[which])
            m = nbhd.query_map(nbhd.query_at(pixel)).double().numpy()
        rows, metric = pixel_rows(layer, nbhd, inputs[which], pixel, None, 10) if nbhd.footprint.keys.size == (1, 1) \
            else ([], None)
        picks[which] = rows
        when = "at initialisation (same seed)" if which == "untrained" else f"after {epoch} epochs"
        show_map(axes[0, 1 + (which == "trained")], rgb, m, pixel,
                 f"{which}: {run.spec.label} layer {name!r}\n{when}; reads {int((m != 0).sum())} pixels")
    out = save(fig, args.out if args.out is not None else Path(f"{run.id}-{name.replace('.', '_')}.png"))
    from rich.table import Table

    table = Table(title=f"{run.id}, layer {name!r} at pixel (row, col) = {pixel}: top picks, untrained vs trained")
    for col in ("rank", "untrained pixel", "weight", "trained pixel", "weight"):
        table.add_column(col)
    for i in range(max(len(picks["untrained"]), len(picks["trained"]))):
        cells = []
        for which in ("untrained", "trained"):
            r = picks[which][i] if i < len(picks[which]) else None
            cells += [str(r.pixel), f"{r.weight:.4g}"] if r else ["", ""]
        table.add_row(str(i + 1), *cells)
    console.print(table)
    same = {r.pixel for r in picks["untrained"]} & {r.pixel for r in picks["trained"]}
    console.print(f"{len(same)} of the top {len(picks['trained'])} picks shared; final test {record.metric} "
                  f"{record.value if record.value is not None else 'not scored yet'}; layers with a "
                  f"neighbourhood: {', '.join(found)}; wrote {out}")
    return 0
