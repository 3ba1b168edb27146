"""``neighbor-zoo``: the command line of the zoo.

    neighbor-zoo verify   check every theorem on fresh random inputs
    neighbor-zoo list     the operator catalogue
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from . import figures

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _verify(args: argparse.Namespace, console: Console) -> int:
    from .theorems import select, verify

    theorems = select(args.filter)
    if not theorems:
        console.print(f"[red]no theorem matches filter {args.filter!r}[/red]")
        return 2
    table = Table(title=f"neighbor-zoo theorems ({args.dtype}, seed {args.seed})")
    for col in ("theorem", "trials", "shapes (worst trial)", "max error", "tolerance", "result"):
        table.add_column(col, overflow="fold")
    failed = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("verifying", total=len(theorems))
        for thm in theorems:
            progress.update(task, description=thm.name)
            verdict = verify(thm, args.seed, DTYPES[args.dtype])
            worst = max(verdict.trials, key=lambda t: t.error) if verdict.trials else None
            failed += not verdict.passed
            table.add_row(thm.name, str(len(verdict.trials)), worst.shapes if worst else "-",
                          f"{verdict.error:.2e}" if worst else "-", f"{verdict.tolerance:.0e}",
                          "[green]pass[/green]" if verdict.passed else "[red]FAIL[/red]")
            progress.advance(task)
    console.print(table)
    console.print("max error: the largest max|ours - reference| / max(1, max|reference|) over the output and the "
                  "gradients of the input and every parameter, across the trials")
    console.print(f"{len(theorems) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _list(args: argparse.Namespace, console: Console) -> int:
    import operators

    names = operators.available(args.filter)
    if not names:
        console.print(f"[red]no operator matches filter {args.filter!r}[/red]")
        return 2
    table = Table(title="neighbor-zoo operators")
    for col in ("name", "family", "layout", "selection", "locality", "cost", "fast path", "residual", "aliases"):
        table.add_column(col, overflow="fold")
    for name in names:
        i = operators.info(name)
        table.add_row(name, i.family, i.layout, i.selection, i.locality, i.cost, i.fast_path or "-",
                      "yes" if i.residual else "-", ", ".join(i.aliases))
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neighbor-zoo",
        description="Convolution, ConvNN, attention, non-local and N3 blocks as one select-then-combine operator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("verify", help="check every theorem of the library on fresh random inputs",
                       description="Run each equivalence theorem (forward and gradients) on random inputs and "
                                   "print its max abs error; exit 1 if any fails.")
    p.add_argument("--seed", type=int, default=0, help="random seed for the inputs (default 0)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64", help="precision (default float64)")
    p.add_argument("--filter", default=None, help="only theorems matching this wildcard, e.g. 'conv*'")
    p.set_defaults(run=_verify)

    p = sub.add_parser("list", help="list the operator catalogue",
                       description="Print every registered operator with what operators.info says about it "
                                   "(layout, selection kind, locality, cost class, fast path); exit 2 if the "
                                   "filter matches nothing.")
    p.add_argument("filter", nargs="?", default=None,
                   help="case-insensitive substring ('attention') or wildcard ('conv*') on the names")
    p.set_defaults(run=_list)

    figures.register(sub)  # figures, show, explore
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: don't fold the tables to 80 columns
        console = Console(width=160)
    return args.run(args, console)


if __name__ == "__main__":
    sys.exit(main())
