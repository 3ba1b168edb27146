"""``neighbor-zoo``: the command line of the zoo; each room of :mod:`comparisons` adds its own commands.

    theorems   verify, list        the equivalence theorems and the operator catalogue
    ablation   compare, report     train operators side by side on real data
    figures    figures, show, explore
    bench      bench               time and memory against native ops and peers

A command that needs an optional extra says so with ``set_defaults(extra=NAME)``; without
that extra installed it exits 2 with one line naming it before it runs (the rooms import
matplotlib and scikit-learn only inside the commands that use them).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence

from rich.console import Console

from neighborhoods import __version__

from . import ablation, bench, figures, theorems
from .usage import Parser, UsageError, report

#: the rooms in the order their commands appear in ``--help``
ROOMS = (theorems, ablation, figures, bench)
#: extra (pyproject.toml's optional-dependencies) -> the modules its commands import
EXTRAS = {"experiments": ("matplotlib", "sklearn")}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="neighbor-zoo",
        description="Convolution, ConvNN, attention, non-local and N3 blocks as one select-then-combine operator.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for room in ROOMS:
        room.register(sub)
    return parser


def missing_extra(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a usage error (see :mod:`comparisons.usage`) is one line on stderr and status 2."""
    args = build_parser().parse_args(argv)
    extra = getattr(args, "extra", None)
    if extra is not None and (missing := missing_extra(extra)):
        report(f"neighbor-zoo {args.command}", f"needs the '{extra}' extra ({', '.join(missing)} not installed): "
                                                f"pip install 'neighbor-zoo[{extra}]'")
        return 2
    console = Console()
    if not console.is_terminal:  # piped or captured: don't fold the tables to 80 columns
        console = Console(width=160)
    try:
        return args.run(args, console)
    except UsageError as err:
        report(f"neighbor-zoo {args.command}", str(err))
        return 2


if __name__ == "__main__":
    sys.exit(main())
