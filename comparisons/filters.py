"""The one name filter of the command line: ``neighbor-zoo list`` and ``verify`` both use it.

A pattern matches a name case-insensitively, as a substring (``cgnl`` finds
``spectral.cgnl``) or, when it holds a shell wildcard character (``*``, ``?``, ``[``), as a
whole-name wildcard (``conv*`` finds ``conv2d`` and ``convnn2d``, not ``n3block2d``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

WILDCARD_CHARACTERS = frozenset("*?[")


def matches(name: str, pattern: str | None) -> bool:
    """Whether ``name`` is selected by ``pattern`` (``None`` selects every name)."""
    if pattern is None:
        return True
    name, pattern = name.lower(), pattern.lower()
    if WILDCARD_CHARACTERS.intersection(pattern):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def match(names: Iterable[str], pattern: str | None) -> list[str]:
    """The ``names`` that ``pattern`` selects, in their given order."""
    return [name for name in names if matches(name, pattern)]
