"""Which registered operator works under which torch transform: computed, then printed as markdown.

    PYTHONPATH=. python scripts/transforms_table.py > /tmp/table.md   # the table of docs/transforms.md

For every operator (its registered example, eval mode, float32) and each of ``torch.func.vmap``
(over the batch: one sample at a time), ``torch.export.export``, ``torch.compile(fullgraph=True)``
(backend ``eager``: Dynamo's graph capture, which is where fullgraph fails) and
``torch.jit.trace``, the outcome is ``yes`` (runs and equals eager within float32 round-off,
rtol 1e-4, atol 1e-5) or ``no`` with the first line of the error it raises. tests/test_docs.py
recomputes it and compares it with the page (slow).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch._dynamo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import operators  # noqa: E402
from operators.registry import entry  # noqa: E402

TRANSFORMS = ("vmap", "export", "compile", "trace")
#: what an error of each transform must name (the message says which transform failed)
NAMES = {"vmap": ("vmap",), "export": ("export", "dynamo", "guard", "torch._check", "compile"),
         "compile": ("compile", "dynamo", "graph break", "torch._check"), "trace": ("trace", "jit")}


def _apply(kind: str, layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    if kind == "vmap":
        return torch.func.vmap(lambda xi: layer(xi.unsqueeze(0)).squeeze(0))(x)
    if kind == "export":
        return torch.export.export(layer, (x,)).module()(x)
    if kind == "compile":
        torch._dynamo.reset()
        return torch.compile(layer, fullgraph=True, backend="eager")(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(layer, (x,), check_trace=False)(x)


def outcome(name: str, kind: str) -> tuple[bool, str]:
    """``(True, '')`` when the transformed layer equals eager, else ``(False, first line of the error)``."""
    e = entry(name)
    torch.manual_seed(0)
    layer = e.target(**{**e.defaults, **e.example.kwargs}).eval()
    torch.manual_seed(1)
    x = torch.randn(*e.example.input_shape)
    with torch.no_grad():
        expected = layer(x)
        try:
            got = _apply(kind, layer, x)
        except Exception as err:  # noqa: BLE001 (the table records whatever the transform raised)
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            kind_of = type(err).__qualname__ if type(err).__module__ == "builtins" else \
                f"{type(err).__module__}.{type(err).__qualname__}"  # e.g. torch._dynamo.exc.Unsupported
            return False, f"{kind_of}: {first}"
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)  # a wrong number is a failure, not a "no"
    return True, ""


def short(reason: str) -> str:
    """The table's cell for an error: its kind and the start of its message, pipes escaped."""
    text = reason if len(reason) <= 160 else reason[:157] + "..."
    return text.replace("|", "\\|").replace("`", "'")


def table(names: list[str] | None = None, progress: Callable[[str], None] | None = None) -> str:
    names = operators.available() if names is None else names
    lines = ["| operator | " + " | ".join(TRANSFORMS) + " |", "|---" * (len(TRANSFORMS) + 1) + "|"]
    notes: dict[str, str] = {}
    for name in names:
        cells = []
        for kind in TRANSFORMS:
            if progress:
                progress(f"{name} {kind}")
            ok, reason = outcome(name, kind)
            if ok:
                cells.append("yes")
            else:
                key = short(reason)
                ref = notes.setdefault(key, f"[{len(notes) + 1}]")
                cells.append(f"no {ref}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{ref} {reason}  " for reason, ref in notes.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(progress=lambda s: print(s, file=sys.stderr)), end="")
