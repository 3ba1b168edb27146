"""One rule for every command's usage errors: exit status 2 and one line on stderr, no traceback.

``neighbor-zoo <command>: error: <what was wrong>``, the way argparse reports a bad flag. Two
ways in, one way out:

* argparse ``type=`` functions here (:func:`positive_int`, :func:`output_file`, ...) reject a
  bad value while the command line is parsed; :class:`Parser` prints argparse's message as
  that one line (argparse's own ``error`` adds the whole usage text);
* a command that finds a problem later (an unknown operator name, a query outside the photo)
  raises :class:`UsageError`, which :func:`comparisons.cli.main` turns into the same line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


class UsageError(Exception):
    """A command line that cannot be run as given; the message says what to change."""


def one_line(message: str) -> str:
    """``message`` on one line (newlines become ``'; '``)."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def report(prog: str, message: str) -> None:
    """Print ``prog: error: message`` as one line on stderr."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (its subcommand parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        report(self.prog, message)
        sys.exit(2)


def int_at_least(flag: str, minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (``flag`` names it in the message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # what argparse calls the type in its own messages
    return parse


def positive_int(flag: str) -> Callable[[str], int]:
    """An argparse type: an integer >= 1."""
    return int_at_least(flag, 1)


def positive_float(flag: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number > 0, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number > 0, got {text!r}")
        return value

    parse.__name__ = "positive number"
    return parse


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder (so nothing can be written below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _output_path(flag: str, kind: str, wrong_kind: Callable[[Path], str | None], verb: str) -> Callable[[str], Path]:
    """An argparse type for a path to write: not empty, not the wrong kind of thing, not below a file."""

    def parse(text: str) -> Path:
        path = Path(text)
        if not text:
            raise argparse.ArgumentTypeError(f"{flag} must be a {kind} path, got ''")
        problem = wrong_kind(path)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} {problem}")
        blocker = _file_above(path)
        if blocker is not None:
            raise argparse.ArgumentTypeError(f"{flag} {text!r} cannot be {verb}: {str(blocker)!r} is a file, "
                                             f"not a folder")
        return path

    parse.__name__ = f"{kind} path"
    return parse


def output_file(flag: str) -> Callable[[str], Path]:
    """An argparse type: a file path that can be written (not a folder, not below a file)."""
    return _output_path(flag, "file", lambda p: "is a folder; give a file path" if p.is_dir() else None, "written")


def output_folder(flag: str) -> Callable[[str], Path]:
    """An argparse type: a folder path to write into (an existing folder, or none yet; not a file)."""
    return _output_path(flag, "folder",
                        lambda p: "is a file; give a folder (existing or new)" if p.exists() and not p.is_dir() else None,
                        "created")
