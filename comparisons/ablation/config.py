"""Sweep configuration files: TOML (``tomllib``, Python >= 3.11) or JSON, parsed as data, never executed.

::

    task = "digits"                  # any of these top-level keys may be left out
    backbone = "vgg"
    recipe = "default"
    epochs = 4
    seeds = 2
    [task_options]                   # constructor arguments of the task, e.g. subset = 300
    [backbone_options]               # e.g. width = 16
    [recipe_options]                 # overrides of the recipe's fields, e.g. lr = 1e-3
    [operators.mine]                 # an operator by its parts
    selector = {type = "HardKNN", k = 9, space = "hybrid"}
    combiner = {type = "Conv1D"}
    [operators.wide]                 # an operator by name, other keys are its arguments
    name = "convnn2d"
    k = 16

Every error names the key and the line it is on.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .parts import PartError
from .specs import OperatorSpec

TOP_LEVEL = ("task", "backbone", "recipe", "epochs", "seeds", "device", "data_dir", "task_options",
             "backbone_options", "recipe_options", "operators")
_TYPES = {"task": str, "backbone": str, "recipe": str, "epochs": int, "seeds": int, "device": str, "data_dir": str,
          "task_options": dict, "backbone_options": dict, "recipe_options": dict, "operators": dict}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Config:
    """A parsed config: top-level settings (CLI flags override them) and the operators, in file order."""

    settings: dict[str, Any] = field(default_factory=dict)
    operators: tuple[OperatorSpec, ...] = ()
    path: str | None = None


def locate(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line where the key ``path`` (e.g. ``('operators', 'mine', 'selector', 'k')``) is written.

    Each component is searched from the line of the previous one on, as a TOML key
    (``key =``, ``[a.key]``, ``key.``) or a JSON key (``"key":``); where a component is not
    found (an inline table's key on its parent's line), the parent's line is the answer.
    """
    lines = text.splitlines()
    line = None
    start = 0
    for comp in path:
        pattern = re.compile(r'(^|[\s{,.\[])"?' + re.escape(comp) + r'"?\s*(=|\]|\.|:)')
        for i in range(start, len(lines)):
            if pattern.search(lines[i]):
                line, start = i + 1, i
                break
        else:
            break
    return line


def _fail(source: str, text: str, path: tuple[str, ...], why: str) -> ConfigError:
    line = locate(text, path)
    where = f"line {line}" if line else "unknown line"
    return ConfigError(f"config {source}, {where}, key {'.'.join(path) or '(top level)'}: {why}")


def parse_config(text: str, source: str = "<config>", fmt: str = "toml") -> Config:
    """Parse and validate a config's text (``fmt`` ``'toml'`` or ``'json'``)."""
    if fmt == "toml":
        if sys.version_info < (3, 11):
            raise ConfigError(f"config {source}: TOML configs need Python >= 3.11 (tomllib); on "
                              f"{sys.version_info.major}.{sys.version_info.minor} write the same keys as JSON")
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config {source} is not valid TOML: {err}") from None
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config {source} is not valid JSON: {err.msg} (line {err.lineno}, "
                              f"column {err.colno})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config {source} must hold a JSON object at the top, got {type(data).__name__}")
    else:
        raise ValueError(f"fmt must be 'toml' or 'json', got {fmt!r}")

    settings = {}
    for key, value in data.items():
        if key not in TOP_LEVEL:
            raise _fail(source, text, (key,), f"unknown key; keys: {', '.join(TOP_LEVEL)}")
        want = _TYPES[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise _fail(source, text, (key,), f"must be {'a table' if want is dict else want.__name__}, got {value!r}")
        if want is int and value < 1:
            raise _fail(source, text, (key,), f"must be >= 1, got {value}")
        if key != "operators":
            settings[key] = value
    specs = []
    for label, entry in data.get("operators", {}).items():
        where = ("operators", label)
        origin = f"{source} line {locate(text, where)}"
        if not isinstance(entry, dict):
            raise _fail(source, text, where, f"must be a table (name = ... or selector/combiner), got {entry!r}")
        try:
            if "name" in entry:
                if not isinstance(entry["name"], str):
                    raise PartError(("name",), f"name must be a string, got {entry['name']!r}")
                if "selector" in entry or "combiner" in entry:
                    raise PartError(("name",), "give either name (and its arguments) or selector + combiner, not both")
                kwargs = {k: v for k, v in entry.items() if k != "name"}
                specs.append(OperatorSpec(label=label, name=entry["name"], kwargs=kwargs, origin=origin))
            else:
                if "selector" not in entry:
                    raise PartError((), "needs name = \"<registered name>\" or a selector (and combiner)")
                extra = sorted(set(entry) - {"selector", "combiner"})
                if extra:
                    raise PartError((extra[0],), "unknown key next to selector/combiner (keys: selector, combiner)")
                specs.append(OperatorSpec(label=label, selector=entry["selector"], combiner=entry.get("combiner"),
                                          origin=origin))  # checks the parts' keys (PartError)
        except PartError as err:
            raise _fail(source, text, (*where, *err.path), str(err)) from None
        except ValueError as err:
            raise _fail(source, text, where, str(err)) from None
    return Config(settings, tuple(specs), source)


def load_config(path: str | Path) -> Config:
    """Read a ``.toml`` or ``.json`` config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    return parse_config(path.read_text(), str(path), fmt)
