"""``neighbor-zoo verify``: run the theorems (the library's and the user's) over seeds, print a table;
``neighbor-zoo list``: the operator catalogue the theorems are about (the same ``--filter``).

    neighbor-zoo verify                              every theorem, seed 0, float64
    neighbor-zoo verify --seeds 0:20 --dtype float32 the worst of 20 seeds per theorem
    neighbor-zoo verify --plugin my_theorems.py      add a file of one's own theorems
    neighbor-zoo verify --list --filter cgnl         what is claimed, and at what tolerance

Exit status: 0 all pass, 1 a theorem failed or raised (its row says ERROR), 2 a usage error
(no theorem matches the filter, a plugin failed to load).
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ..usage import UsageError

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def parse_seeds(text: str) -> list[int]:
    """``"0:20"`` -> 0..19, ``"1,5,9"`` -> those, ``"0:3,10"`` -> 0, 1, 2, 10 (order kept, no repeats)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                start, stop = (int(v) for v in part.split(":"))
                if not 0 <= start < stop:
                    raise ValueError
                chunk = range(start, stop)
            else:
                chunk = [int(part)]
                if chunk[0] < 0:
                    raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected seeds as START:STOP (0 <= START < STOP) or non-negative integers separated by "
                f"commas, e.g. '0:20' or '1,5,9'; got {text!r}") from None
        seeds.extend(s for s in chunk if s not in seeds)
    return seeds


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` and ``list`` subcommands."""
    p = subparsers.add_parser("verify", help="check every theorem of the library on fresh random inputs",
                              description="Run each equivalence theorem (forward and gradients) on random inputs "
                                          "and print its max error; exit 1 if any fails or raises.")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=None, help="random seed for the inputs (default 0)")
    seeds.add_argument("--seeds", type=parse_seeds, default=None, metavar="SEEDS",
                       help="sweep seeds, e.g. '0:20' (0 to 19) or '1,5,9'; the table shows each theorem's worst")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64", help="precision (default float64)")
    p.add_argument("--filter", default=None,
                   help="only theorems whose name contains this text or matches this wildcard, case-insensitive "
                        "(e.g. 'cgnl', 'conv*')")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file of your own theorems (repeatable); see README 'Add a theorem'")
    p.add_argument("--list", action="store_true", help="print each theorem's statement and tolerances; run nothing")
    p.set_defaults(run=run)

    p = subparsers.add_parser("list", help="list the operator catalogue",
                              description="Print every registered operator with what operators.info says about it "
                                          "(layout, selection kind, locality, cost class, fast path); exit 2 if the "
                                          "filter matches nothing.")
    p.add_argument("pattern", nargs="?", default=None, metavar="FILTER", help="same as --filter")
    p.add_argument("--filter", default=None,
                   help="case-insensitive substring ('attention') or wildcard ('conv*') on the names")
    p.set_defaults(run=run_list)


def run_list(args: argparse.Namespace, console: Console) -> int:
    import operators

    if args.filter is not None and args.pattern is not None:
        raise UsageError(f"give the filter once: {args.pattern!r} or --filter {args.filter!r}")
    pattern = args.filter if args.filter is not None else args.pattern
    names = operators.available(pattern)  # the filter `verify --filter` uses too (operators.registry.match)
    if not names:
        raise UsageError(f"no operator matches filter {pattern!r}")
    table = Table(title="neighbor-zoo operators")
    for col in ("name", "family", "layout", "selection", "locality", "cost", "fast path", "residual", "aliases"):
        table.add_column(col, overflow="fold")
    for name in names:
        i = operators.info(name)
        table.add_row(name, i.family, i.layout, i.selection, i.locality, i.cost, i.fast_path or "-",
                      "yes" if i.residual else "-", ", ".join(i.aliases))
    console.print(table)
    return 0


def _load_plugins(files: list[str]) -> None:
    from . import plugins

    plugins.load_entry_points()
    for file in files:
        plugins.load_file(file)


def _print_statements(theorems: list, console: Console) -> None:
    table = Table(title=f"neighbor-zoo theorems ({len(theorems)})")
    for col in ("theorem", "statement", "float64 tol", "float32 tol"):
        table.add_column(col, overflow="fold")
    for thm in theorems:
        table.add_row(thm.name, escape(thm.statement), f"{thm.tolerance[torch.float64]:.0e}",
                      f"{thm.tolerance[torch.float32]:.0e}")
    console.print(table)


def run(args: argparse.Namespace, console: Console) -> int:
    from . import select
    from .plugins import PluginError
    from .sweep import sweep

    try:
        _load_plugins(args.plugin)
    except PluginError as exc:
        raise UsageError(str(exc)) from None
    theorems = select(args.filter)
    if not theorems:
        raise UsageError(f"no theorem matches filter {args.filter!r} (see `neighbor-zoo verify --list`)")
    if args.list:
        _print_statements(theorems, console)
        return 0

    seeds = args.seeds if args.seeds is not None else [0 if args.seed is None else args.seed]
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds, worst shown"
    table = Table(title=f"neighbor-zoo theorems ({args.dtype}, {seed_text})")
    for col in ("theorem", "trials", "worst seed", "shapes (worst trial)", "error", "tolerance", "result"):
        table.add_column(col, overflow="fold")
    failed = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("verifying", total=len(theorems) * len(seeds))
        for done, thm in enumerate(theorems, 1):
            progress.update(task, description=thm.name)
            result = sweep(thm, seeds, DTYPES[args.dtype], on_seed=lambda _: progress.advance(task))
            progress.update(task, completed=done * len(seeds))  # a theorem that raises skips its other seeds
            failed += not result.passed
            tolerance = f"{thm.tolerance[DTYPES[args.dtype]]:.0e}"
            if result.failure is not None:
                seed, message = result.failure
                table.add_row(thm.name, "-", str(seed), f"[red]{escape(message)}[/red]", "-", tolerance,
                              "[red]ERROR[/red]")
                continue
            seed, verdict = result.worst or ("-", None)
            trial = verdict.worst if verdict else None
            if trial is not None and trial.tolerance is not None:
                tolerance = f"{trial.tolerance:.0e} (this trial)"
            table.add_row(thm.name, str(len(verdict.trials)) if verdict else "0", str(seed),
                          escape(trial.shapes) if trial else "-", f"{trial.error:.2e}" if trial else "-", tolerance,
                          "[green]pass[/green]" if result.passed else "[red]FAIL[/red]")
    console.print(table)
    console.print("error: max|ours - reference| / max(1, max|reference|) over the output and the gradients of the "
                  "input and every parameter, for the trial closest to its tolerance across the trials"
                  + (" and the seeds" if len(seeds) > 1 else ""))
    console.print(f"{len(theorems) - failed} passed, {failed} failed")
    return 1 if failed else 0
