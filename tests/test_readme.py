"""Every python example in the README and the docs runs as written.

The blocks of one page run in order in one namespace (a page may build on its earlier
blocks), each page in a fresh one.
"""

import re
from pathlib import Path

import pytest

from comparisons.theorems import base

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def test_readme_has_examples():
    assert python_blocks(ROOT / "README.md"), "README has no python example"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page, monkeypatch):
    # the "Add a theorem" example registers one: into a copy, so other tests never see it
    monkeypatch.setattr(base, "THEOREMS", dict(base.THEOREMS))
    namespace: dict = {}
    for i, block in enumerate(python_blocks(page)):
        exec(compile(block, f"{page.name} block {i + 1}", "exec"), namespace)
