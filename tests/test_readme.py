"""The README's usage example runs as written."""

import re
from pathlib import Path

from comparisons.theorems import base


def test_readme_usage_runs(monkeypatch):
    # the "Add a theorem" example registers one: into a copy, so other tests never see it
    monkeypatch.setattr(base, "THEOREMS", dict(base.THEOREMS))
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
