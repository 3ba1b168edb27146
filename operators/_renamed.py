"""Arguments renamed because they did not mean what a convolution's argument of that name means."""

from __future__ import annotations

import warnings
from typing import TypeVar

T = TypeVar("T")


def renamed(old: str, old_value: T | None, new: str, new_value: T | None, why: str) -> T | None:
    """The value of ``new``, taking ``old`` (with a ``DeprecationWarning``) for one release.

    ``why`` says what the argument is, in a sentence; giving both spellings is a ``TypeError``.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"got both {old}={old_value!r} and {new}={new_value!r}: {old} is the old name of {new}")
    warnings.warn(f"{why}; it is now called {new} ({old}={old_value!r} is read as {new}={old_value!r} for one "
                  f"release)", DeprecationWarning, stacklevel=3)
    return old_value
