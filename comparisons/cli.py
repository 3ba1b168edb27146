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

from . import verify_command


def _list(args: argparse.Namespace, console: Console) -> int:
    import operators

    from .filters import match

    if args.filter is not None and args.pattern is not None and args.filter != args.pattern:
        console.print(f"[red]give the filter once: positional {args.pattern!r} or --filter {args.filter!r}[/red]")
        return 2
    pattern = args.filter if args.filter is not None else args.pattern
    names = match(operators.available(), pattern)
    if not names:
        console.print(f"[red]no operator matches filter {pattern!r}[/red]")
        return 2
    table = Table(title="neighbor-zoo operators")
    table.add_column("name")
    table.add_column("family")
    table.add_column("builds")
    for name in names:
        ctor = operators.registry.constructor(name)
        target = getattr(ctor, "func", ctor)
        preset = ", ".join(f"{k}={v!r}" for k, v in getattr(ctor, "keywords", {}).items())
        table.add_row(name, operators.family(name), f"{target.__name__}({preset})")
    console.print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neighbor-zoo",
        description="Convolution, ConvNN, attention, non-local and N3 blocks as one select-then-combine operator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify_command.register(sub)

    p = sub.add_parser("list", help="list the operator catalogue",
                       description="Print every registered operator name, its family and what it builds.")
    p.add_argument("pattern", nargs="?", default=None, metavar="FILTER", help="same as --filter")
    p.add_argument("--filter", default=None,
                   help="only names containing this text or matching this wildcard, case-insensitive (e.g. 'conv*')")
    p.set_defaults(run=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: don't fold the tables to 80 columns
        console = Console(width=160)
    return args.run(args, console)


if __name__ == "__main__":
    sys.exit(main())
