"""Regenerate the README's and docs/ablations.md's tables of the saved compare runs.

Each page marks a run's place with ``<!-- run NAME -->`` ... ``<!-- end NAME -->`` (or a
bare ``<!-- NAME -->`` the first time); the block between is replaced by
:func:`comparisons.ablation.report.saved_run_block` of ``docs/results/compare-<NAME>``. tests/test_docs.py
checks that the pages hold exactly these blocks.

    python scripts/ablation_tables.py
"""

from __future__ import annotations

import re
from pathlib import Path

from comparisons.ablation.report import saved_run_block

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", ROOT / "docs" / "ablations.md")
#: marker name -> saved run folder under docs/results
RUNS = {"digits-default": "compare-digits", "digits-other-seeds": "compare-digits-seeds-5-9",
        "denoise": "compare-denoise", "vit": "compare-vit"}


def refresh(text: str) -> str:
    for name, folder in RUNS.items():
        path = ROOT / "docs" / "results" / folder
        if not (path / "results.jsonl").exists():
            continue
        block = f"<!-- run {name} -->\n{saved_run_block(path)}\n<!-- end {name} -->"
        text = re.sub(rf"<!-- run {name} -->.*?<!-- end {name} -->|<!-- {name} -->", lambda _: block, text,
                      flags=re.S)
    return text


if __name__ == "__main__":
    for page in PAGES:
        page.write_text(refresh(page.read_text()))
        print(f"refreshed {page.relative_to(ROOT)}")
