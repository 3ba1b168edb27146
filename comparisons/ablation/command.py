"""``neighbor-zoo compare`` (train a sweep, resumably) and ``neighbor-zoo report`` (re-render saved results).

Precedence of settings: a ``--preset`` < a ``--config`` file < explicit flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shlex
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from neighborhoods.checks import parse_seed_list

from ..usage import UsageError, output_folder, positive_int
from .backbones import BACKBONES, DEFAULT_BACKBONE, build_backbone
from .config import ConfigError, load_config
from .cost import MATCH_TOLERANCE, count_parameters, match_width
from .presets import PRESETS, get_preset, vary_selector
from .recipes import RECIPES, get_recipe
from .record import RunRecord
from .report import rich_tables, write_report
from .results import RunStore, atomic_write_text, collect
from .specs import parse_operator_list
from .summary import tables, to_json
from .sweep import Sweep
from .tasks import TASKS
from .train import Built, Dist, build_model, is_finished, train_run

SWEEP_FILE = "sweep.json"
VARY = ("selector",)
MATCH = ("params",)
#: tasks that read a folder the user has (``--data-dir``)
DATA_DIR_TASKS = ("cifar10", "imagefolder")
#: the backbone option that sets each backbone's width (what ``--match params`` scales)
WIDTH_OPTION = {"vgg": "width", "vit": "dim", "dncnn": "width"}
#: the widths the backbones build with by default (where ``--match params`` starts its search)
DEFAULT_WIDTH = {"vgg": 8, "vit": 32, "dncnn": 32}


def parse_seeds(text: str) -> tuple[int, ...]:
    """``N`` -> seeds ``0..N-1``; ``a:b`` -> ``a..b-1``; ``1,5,9`` or ``0:3,10`` -> those (``verify --seeds``'s
    parser, :func:`neighborhoods.checks.parse_seed_list`; only a bare ``N`` means a count here)."""
    if text.strip().isdigit():
        count = int(text)
        if count < 1:
            raise argparse.ArgumentTypeError(f"--seeds N must be >= 1, got {text!r}")
        return tuple(range(count))
    try:
        return tuple(parse_seed_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be N (seeds 0..N-1), START:STOP (0 <= START < STOP) or "
                                         f"non-negative seeds separated by commas, e.g. 5, 5:10 or 0:3,10; "
                                         f"got {text!r}") from None


def parse_shard(text: str) -> tuple[int, int]:
    """``'i/n'`` with ``0 <= i < n``."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be i/n (e.g. 0/2), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` and ``report`` subcommands."""
    p = sub.add_parser(
        "compare", help="train operators side by side on real data and tabulate them",
        description="Swap the operator of a backbone (VGG-11, ViT or DnCNN), train each operator with each seed, "
                    "save one JSON record per (operator, seed, epoch) and a report. Re-running the same command "
                    "resumes unfinished runs and skips finished ones. With no arguments: the digits ablation over "
                    "conv2d, convnn, branching (0.5), attention, nonlocal and n3, 5 seeds x 16 epochs; the table "
                    "gives 95% intervals over seeds and paired verdicts against the first operator.")
    p.add_argument("--task", default=None, help=f"one of {', '.join(TASKS)} (default digits)")
    p.add_argument("--operators", default=None,
                   help="comma-separated operators: shorthands (conv2d, convnn, branching, attention, nonlocal, n3, "
                        "identity), registered names (neighbor-zoo list), or NAME(key=value, ...)")
    p.add_argument("--epochs", type=positive_int("--epochs"), default=None, help="epochs per run (recipe default)")
    p.add_argument("--seeds", type=parse_seeds, default=None, metavar="SEEDS",
                   help="seeds per operator: N (seeds 0..N-1), START:STOP, or a list such as 0:3,10 "
                        "(default: the recipe's)")
    p.add_argument("--baseline", default=None,
                   help="the operator every other is compared with, by label (default: the first operator)")
    p.add_argument("--match", choices=MATCH, default=None,
                   help="params: scale each operator's backbone width so its parameter count is within "
                        f"{MATCH_TOLERANCE * 100:.0f}%% of the baseline's (the report says where it cannot)")
    p.add_argument("--config", default=None, help="a TOML (Python >= 3.11) or JSON sweep file, parsed as data")
    p.add_argument("--preset", default=None, help=f"a named sweep: {', '.join(PRESETS)}")
    p.add_argument("--vary", choices=VARY, default=None,
                   help="selector: hold the combiner fixed (Conv1D, or the config's) and swap how neighbours are chosen")
    p.add_argument("--backbone", default=None, help=f"one of {', '.join(BACKBONES)} (default: vgg, dncnn for denoise)")
    p.add_argument("--recipe", default=None, help=f"training recipe: {', '.join(RECIPES)} (default: default)")
    p.add_argument("--data-dir", default=None,
                   help="the dataset folder of tasks that read one: cifar10 (cifar-10-batches-py or its parent), "
                        "imagefolder (one sub-folder of images per class)")
    p.add_argument("--out", type=output_folder("--out"), default=None,
                   help="results folder (default results/compare-<preset or task>)")
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--threads", type=positive_int("--threads"), default=1,
                   help="torch CPU threads per process (default 1: the layers are small, so threads cost more "
                        "than they give; scale out with --shard or torchrun instead)")
    p.add_argument("--shard", type=parse_shard, default=None, help="run only shard i of n of the sweep (0-based)")
    p.add_argument("--jobs", type=positive_int("--jobs"), default=1,
                   help="train this many runs at a time, each in its own process with --threads threads "
                        "(default 1; --jobs 2 on a 2-core machine halves the wall time)")
    p.set_defaults(run=run_compare, extra="experiments")

    p = sub.add_parser("report", help="re-render the table and plots of saved compare results",
                       description="Merge the records under one or more results folders (shards of a sweep) and "
                                   "write results.jsonl, results.csv, report.md and the plots; print the table and the "
                                   "environment the runs ran in (--json: one JSON object instead).")
    p.add_argument("folders", nargs="+", help="results folders written by neighbor-zoo compare")
    p.add_argument("--out", type=output_folder("--out"), default=None,
                   help="where to write the merged report (default: the first folder)")
    p.add_argument("--baseline", default=None,
                   help="the operator every other is compared with (default: the sweep's, else the first)")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (README: 'report --json') instead of the table")
    p.set_defaults(run=run_report, extra="experiments")


def build_sweep(args: argparse.Namespace) -> tuple[Sweep, Path]:
    """The sweep the flags, config and preset describe; ValueError on anything unusable."""
    preset = get_preset(args.preset) if args.preset else None
    config = load_config(args.config) if args.config else None
    settings = config.settings if config else {}

    def pick(flag: str, key: str, default: Any) -> Any:
        value = getattr(args, flag)
        if value is not None:
            return value
        if key in settings:
            return settings[key]
        return default

    task = pick("task", "task", (preset.task if preset else None) or "digits")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choices: {', '.join(TASKS)}")
    if args.operators and args.vary:
        raise ValueError("--operators and --vary selector both choose the operators; give one")
    if args.operators is not None:
        if not args.operators.strip():
            raise ValueError("--operators is empty; give at least one operator (or leave the flag out for the "
                             "default sweep)")
        specs = tuple(parse_operator_list(args.operators))
    elif args.vary == "selector":
        parts = [s for s in (config.operators if config else ()) if s.selector is not None]
        specs = vary_selector(parts[0].combiner if parts else None)
    elif config and config.operators:
        specs = config.operators
    else:
        specs = (preset or get_preset("default")).operators
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"operator labels must be unique, got {labels}")
    recipe = get_recipe(pick("recipe", "recipe", (preset.recipe if preset else None) or "default"))
    if settings.get("recipe_options"):
        recipe = recipe.replace(**settings["recipe_options"])
    task_options = dict(settings.get("task_options", {}))
    data_dir = pick("data_dir", "data_dir", None)
    if task in DATA_DIR_TASKS:
        task_options["data_dir"] = data_dir
    elif data_dir is not None:
        raise ValueError(f"--data-dir is only read by tasks {', '.join(map(repr, DATA_DIR_TASKS))}, got task {task!r}")
    kind = "denoising" if task == "denoise" else "classification"
    backbone = pick("backbone", "backbone", (preset.backbone if preset else None) or DEFAULT_BACKBONE[kind])
    device = pick("device", "device", "cpu")
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device must be a torch device such as cpu or cuda:0, got {device!r}") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: CUDA is not available on this machine")
    seeds = pick("seeds", "seeds", recipe.seeds)
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    elif isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = tuple(range(seeds))
    baseline = pick("baseline", "baseline", None)
    if baseline is not None and baseline not in labels:
        raise ValueError(f"--baseline must be one of the operators {labels}, got {baseline!r}")
    sweep = Sweep(task=task, backbone=backbone, operators=specs, recipe=recipe,
                  epochs=pick("epochs", "epochs", recipe.epochs), seeds=tuple(seeds),
                  task_options=task_options,
                  backbone_options={**(preset.backbone_options if preset else {}), **settings.get("backbone_options", {})},
                  device=device, baseline=baseline or labels[0])
    if pick("match", "match", None) == "params":
        sweep = match_parameters(sweep)
    out = Path(args.out) if args.out else Path("results") / f"compare-{args.preset or task}"
    return sweep, out


def match_parameters(sweep: Sweep) -> Sweep:
    """``sweep`` with each operator's backbone width set so its parameter count is closest to the baseline's.

    The baseline keeps its width; an operator that cannot come within the tolerance keeps the
    closest width found, and its row says so (``operator_notes``).
    """
    if sweep.backbone not in WIDTH_OPTION:
        raise ValueError(f"--match params: backbone {sweep.backbone!r} has no width option to scale")
    key, task = WIDTH_OPTION[sweep.backbone], sweep.make_task()
    start = int(sweep.backbone_options.get(key, DEFAULT_WIDTH[sweep.backbone]))
    layers = {layer.label: layer for layer in sweep.layers}

    def parameters_at(layer, width: int) -> int | None:
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = build_backbone(sweep.backbone, layer, task, **{**sweep.backbone_options, key: width})
        except ValueError:
            return None
        return count_parameters(model)

    target = parameters_at(layers[sweep.baseline], start)
    if target is None:
        raise ValueError(f"--match params: the baseline {sweep.baseline!r} does not build at {key}={start}")
    options, notes = {}, {}
    for label, layer in layers.items():
        if label == sweep.baseline:
            continue
        found = match_width(lambda w, layer=layer: parameters_at(layer, w), target, start)
        options[label] = {key: found.width}
        notes[label] = (f"{key}={found.width}: {found.parameters:,} parameters, {found.relative_error:+.1%} from "
                        f"{sweep.baseline}'s {target:,}" + ("" if found.within else
                                                            f" (cannot come within {MATCH_TOLERANCE:.0%})"))
    return dataclasses.replace(sweep, operator_options=options, operator_notes=notes)


def check_sweep(sweep: Sweep, out: Path) -> dict[str, Built]:
    """Everything that can fail before training: the task's data, every operator in the backbone, old runs.

    Each operator's backbone is built (and probed) once, for its first seed, exactly as
    training builds it; the models are returned by run id for :func:`train_run` to train, so
    no model is built twice. (The meta device cannot stand in: k-NN selection and N3's
    windows ask their tensors for data, e.g. ``nonzero``.)
    """
    sweep.make_task()
    if sweep.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {sweep.backbone!r}; choices: {', '.join(BACKBONES)}")
    built = {}
    for run in sweep.runs():
        if run.seed != sweep.seeds[0]:
            continue
        try:
            built[run.id] = build_model(run)
        except ValueError as err:
            where = f" (from {run.spec.origin})" if run.spec.origin else ""
            raise ValueError(f"{err}{where}") from None
    for run in sweep.runs():
        store = RunStore(out, run.id)
        checkpoint = store.load_checkpoint() if store.checkpoint_path.exists() else None
        if checkpoint is not None and checkpoint.get("fingerprint") != run.fingerprint():
            raise ValueError(f"{store.folder} holds a run of {run.spec.label!r} seed {run.seed} configured "
                             f"differently (epochs, recipe, task or backbone options); use another --out or "
                             f"delete that folder")
    return built


def command_line(args: argparse.Namespace) -> str:
    parts = ["neighbor-zoo", "compare"]
    for flag in ("task", "operators", "epochs", "seeds", "baseline", "match", "config", "preset", "vary", "backbone",
                 "recipe", "data_dir", "out", "device"):
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", seeds_text(value) if flag == "seeds" else str(value)]
    if args.shard:
        parts += ["--shard", f"{args.shard[0]}/{args.shard[1]}"]
    if getattr(args, "jobs", 1) != 1:
        parts += ["--jobs", str(args.jobs)]
    return shlex.join(parts)


def seeds_text(seeds: tuple[int, ...]) -> str:
    """The shortest ``--seeds`` text for ``seeds``: ``N``, ``a:b`` or a comma list."""
    seeds = tuple(seeds)
    if seeds == tuple(range(len(seeds))):
        return str(len(seeds))
    if seeds == tuple(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}:{seeds[0] + len(seeds)}"
    return ",".join(map(str, seeds))


def _init_distributed(device: str) -> tuple[Dist, torch.device]:
    """Join the ``torchrun`` job if there is one (gloo on CPU, nccl on CUDA); the device of this rank."""
    torch_device = torch.device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if torch_device.type == "cuda":
            torch_device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(torch_device)
        dist.init_process_group("nccl" if torch_device.type == "cuda" else "gloo")
    return Dist.current(), torch_device


def run_compare(args: argparse.Namespace, console: Console, on_epoch=None) -> int:
    try:
        sweep, out = build_sweep(args)
        built = check_sweep(sweep, out)
    except (ValueError, ConfigError) as err:
        raise UsageError(str(err)) from None
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run_sweep(args, console, sweep, out, on_epoch, built)
    finally:
        torch.set_num_threads(threads)


def _run_sweep(args: argparse.Namespace, console: Console, sweep: Sweep, out: Path, on_epoch: Any,
               built: dict[str, Built]) -> int:
    d, device = _init_distributed(sweep.device)
    runs = Sweep.training_order(sweep.shard(*args.shard) if args.shard else sweep.runs())
    built = {run.id: built[run.id] for run in runs if run.id in built}  # other shards' models: not trained here
    command = command_line(args)
    if d.main:
        atomic_write_text(out / SWEEP_FILE, json.dumps({"command": command, "task": sweep.task,
                                                        "backbone": sweep.backbone,
                                                        "operators": [s.to_json() for s in sweep.operators],
                                                        "recipe": sweep.recipe.to_json(), "epochs": sweep.epochs,
                                                        "seeds": list(sweep.seeds), "baseline": sweep.baseline,
                                                        "operator_options": sweep.operator_options},
                                                       indent=2) + "\n")
        console.print(f"{sweep.make_task().describe()}; backbone {sweep.backbone}; recipe {sweep.recipe.name}; "
                      f"{len(runs)} runs x {sweep.epochs} epochs -> {out}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not d.main) as progress:
        all_runs = progress.add_task("runs", total=len(runs))
        if args.jobs > 1 and d.world == 1:  # the workers build their own models (the same numbers)
            built.clear()
            _run_in_processes(args, progress, all_runs, runs, out)
            runs = []
        for run in runs:
            store = RunStore(out, run.id)
            label = f"{run.spec.label} (seed {run.seed})"
            if is_finished(run, store):
                built.pop(run.id, None)
                progress.console.print(f"{label}: finished earlier, skipped", highlight=False)
                progress.advance(all_runs)
                continue
            epochs = progress.add_task(label, total=sweep.epochs)

            def started(first: int, total: int, epochs=epochs) -> None:
                progress.update(epochs, completed=first - 1)

            def done(record: RunRecord, epochs=epochs, label=label) -> None:
                progress.advance(epochs)
                if d.main:
                    scores = [f"{name} {record.metric} {value:.2f}"
                              for name, value in (("validation", record.val_value), ("test", record.value))
                              if value is not None]
                    progress.console.print(f"{label} epoch {record.epoch}/{record.epochs}: train loss "
                                           f"{record.train_loss:.4f}, {', '.join(scores)}, "
                                           f"{record.seconds:.1f} s", highlight=False)
                if on_epoch is not None:
                    on_epoch(record)

            train_run(run, store, device, on_epoch=done, on_start=started, built=built.pop(run.id, None))
            progress.remove_task(epochs)
            progress.advance(all_runs)
    if d.main:
        dropped: list[str] = []
        records = collect([out], dropped)
        for note in dropped:
            console.print(note, highlight=False, markup=False, soft_wrap=True)  # one line, however long
        # a shard's folder may lack the baseline's runs: its report then compares with its first operator
        write_report(records, out, command, sweep.baseline, strict=not args.shard)
        print_tables(console, records, sweep.baseline, strict=not args.shard)
        console.print(f"report: {out / 'report.md'}", highlight=False)
    d.barrier()
    return 0


def _train_quietly(run: Any, out: Path, device: str, threads: int) -> RunRecord:
    """One run in a worker process (``--jobs``); returns its last record."""
    torch.set_num_threads(threads)
    return train_run(run, RunStore(out, run.id), torch.device(device))[-1]


def _run_in_processes(args: argparse.Namespace, progress: Progress, all_runs: Any, runs: list, out: Path) -> None:
    """Train ``runs`` in ``args.jobs`` worker processes (spawned, one torch thread each unless told)."""
    todo = []
    for run in runs:
        if is_finished(run, RunStore(out, run.id)):
            progress.console.print(f"{run.spec.label} (seed {run.seed}): finished earlier, skipped", highlight=False)
            progress.advance(all_runs)
        else:
            todo.append(run)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        futures = {pool.submit(_train_quietly, run, out, run.sweep.device, args.threads): run for run in todo}
        for future in as_completed(futures):
            run, record = futures[future], future.result()
            progress.console.print(f"{run.spec.label} (seed {run.seed}): {record.epochs} epochs, train loss "
                                   f"{record.train_loss:.4f}, test {record.metric} {record.value:.2f}",
                                   highlight=False)
            progress.advance(all_runs)


def print_tables(console: Console, records: list[RunRecord], baseline: str | None, strict: bool = True) -> None:
    for table, lines in rich_tables(records, baseline, strict):
        console.print(table)
        for line in lines:
            console.print(line, highlight=False, markup=False)


def run_report(args: argparse.Namespace, console: Console) -> int:
    folders = [Path(f) for f in args.folders]
    dropped: list[str] = []
    try:
        records = collect(folders, dropped)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for note in dropped:
        console.print(note, highlight=False, markup=False, soft_wrap=True)  # one line, however long
    out = Path(args.out) if args.out else folders[0]
    sweep_file = folders[0] / SWEEP_FILE
    saved = json.loads(sweep_file.read_text()) if sweep_file.exists() else {}
    command, baseline = saved.get("command"), args.baseline or saved.get("baseline")
    if len(folders) > 1 and command:
        command += "  # and the other shards, merged by: " + shlex.join(["neighbor-zoo", "report", *args.folders])
    try:
        table_list = tables(records, baseline)
        if args.json and len(table_list) != 1:
            raise ValueError(f"--json prints one table, but the folders hold {len(table_list)} "
                             f"(task, backbone, metric) groups; report them separately")
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print(json.dumps(to_json(table_list[0])))
        return 0
    path = write_report(records, out, command, baseline)
    print_tables(console, records, baseline)
    console.print(f"report: {path}", highlight=False)
    return 0
