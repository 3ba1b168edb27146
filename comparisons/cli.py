"""``neighbor-zoo``: the command line of the zoo.

    neighbor-zoo verify   check every theorem on fresh random inputs
    neighbor-zoo list     the operator catalogue
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from . import bench_command, compare_command, figures, verify_command


def _list(args: argparse.Namespace, console: Console) -> int:
    import operators

    if args.filter is not None and args.pattern is not None:
        console.print(f"[red]give the filter once: {args.pattern!r} or --filter {args.filter!r}[/red]")
        return 2
    pattern = args.filter if args.filter is not None else args.pattern
    names = operators.available(pattern)  # the filter `verify --filter` uses too (operators.registry.match)
    if not names:
        console.print(f"[red]no operator matches filter {pattern!r}[/red]")
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

    verify_command.register(sub)

    p = sub.add_parser("list", help="list the operator catalogue",
                       description="Print every registered operator with what operators.info says about it "
                                   "(layout, selection kind, locality, cost class, fast path); exit 2 if the "
                                   "filter matches nothing.")
    p.add_argument("pattern", nargs="?", default=None, metavar="FILTER", help="same as --filter")
    p.add_argument("--filter", default=None,
                   help="case-insensitive substring ('attention') or wildcard ('conv*') on the names")
    p.set_defaults(run=_list)
    compare_command.register(sub)  # compare, report
    figures.register(sub)  # figures, show, explore
    bench_command.register(sub)  # bench
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: don't fold the tables to 80 columns
        console = Console(width=160)
    return args.run(args, console)


if __name__ == "__main__":
    sys.exit(main())
