"""Theorems from outside the library: a user's file, or an installed package's entry point.

A plugin is ordinary Python that registers theorems with :func:`~comparisons.theorems.theorem`
when it is imported. ``neighbor-zoo verify --plugin my_theorems.py`` imports a file (user
code, run because the user asked for it); a package can instead declare, in its
``pyproject.toml``::

    [project.entry-points."neighbor_zoo.theorems"]
    my_package = "my_package.theorems"

and every ``verify`` imports that module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from .sweep import describe_exception

ENTRY_POINT_GROUP = "neighbor_zoo.theorems"


class PluginError(RuntimeError):
    """A plugin could not be loaded; the message names the plugin and the exception."""


def load_file(path: str | Path) -> None:
    """Import the Python file at ``path`` so that the theorems it declares register.

    Raises :class:`PluginError` naming the file when it is missing or raises on import.
    """
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"theorem plugin {str(path)!r}: no such file")
    # a name per resolved path: two plugins may share a file name, and re-loading one file
    # replaces its module instead of shadowing another's
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"neighbor_zoo_plugin_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"theorem plugin {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"theorem plugin {str(path)!r} failed to load: {describe_exception(exc)}") from exc


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import every module declared in the entry-point ``group``; returns their names.

    Raises :class:`PluginError` naming the entry point when one fails to import.
    """
    names = []
    for entry_point in importlib.metadata.entry_points(group=group):
        try:
            entry_point.load()
        except Exception as exc:
            raise PluginError(f"theorem plugin entry point {entry_point.name!r} ({entry_point.value}) "
                              f"failed to load: {describe_exception(exc)}") from exc
        names.append(entry_point.name)
    return names
