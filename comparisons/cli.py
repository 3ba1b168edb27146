"""``neighbor-zoo``: the command line of the zoo; each room of :mod:`comparisons` adds its own commands.

    theorems   verify, list        the equivalence theorems and the operator catalogue
    ablation   compare, report     train operators side by side on real data
    figures    figures, show, explore
    bench      bench               time and memory against native ops and peers
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from . import ablation, bench, figures, theorems

#: the rooms in the order their commands appear in ``--help``
ROOMS = (theorems, ablation, figures, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neighbor-zoo",
        description="Convolution, ConvNN, attention, non-local and N3 blocks as one select-then-combine operator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for room in ROOMS:
        room.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: don't fold the tables to 80 columns
        console = Console(width=160)
    return args.run(args, console)


if __name__ == "__main__":
    sys.exit(main())
