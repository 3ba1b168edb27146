"""The docs: every figure they show exists and `neighbor-zoo figures` draws it; every theorem
and test they cite exists; the site builds with `mkdocs build --strict`."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from comparisons.cli import main
from comparisons.theorems import THEOREMS

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def referenced_figures() -> set[str]:
    """File names of the images the pages show from ``docs/figures/``."""
    names = set()
    for page in PAGES:
        names |= set(re.findall(r"!\[[^\]]*\]\(figures/([^)\s]+)\)", page.read_text()))
    return names


def backticked(page: Path) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", page.read_text()))


def test_every_referenced_figure_exists():
    names = referenced_figures()
    assert names, "the docs show no figure"
    missing = sorted(n for n in names if not (DOCS / "figures" / n).is_file())
    assert not missing, f"docs show figures that docs/figures lacks: {missing}"


def test_figures_command_regenerates_exactly_the_referenced_figures(tmp_path, capsys):
    """A reduced run (a 16 x 16 photo) writes every figure the docs show, and nothing else they should show.

    The one allowance: a plot of saved results (``ablation-*``, ``bench-*``) that no page shows
    yet, so that committing new results never breaks the suite before the pages catch up.
    """
    assert main(["figures", "--out", str(tmp_path), "--size", "16", "--results", str(DOCS / "results")]) == 0
    written = {p.name for p in tmp_path.iterdir() if p.suffix == ".png"}
    shown = referenced_figures()
    unshown = {n for n in written - shown if not n.startswith(("ablation-", "bench-"))}
    assert shown <= written and not unshown, (f"written but not shown: {sorted(unshown)}; "
                                             f"shown but not written: {sorted(shown - written)}")
    for name in written:
        assert (tmp_path / name).stat().st_size > 1000, f"{name} is suspiciously small"


def test_cited_theorems_exist():
    """Every `prefix.rest` or `a==b` token whose prefix is a theorem family names a registered theorem."""
    families = {re.split(r"\.|==", name)[0] for name in THEOREMS}
    cited = 0
    for page in PAGES:
        for token in backticked(page):
            if re.fullmatch(r"[a-z0-9_]+(\.|==)[a-z0-9_.=>\-]+", token) and re.split(r"\.|==", token)[0] in families \
                    and not token.endswith((".md", ".png", ".py")):
                cited += 1
                assert token in THEOREMS, f"{page.name} cites theorem `{token}`, which is not registered"
    assert cited >= 20, f"only {cited} theorem citations found: the pattern no longer matches the docs"


def test_cited_tests_exist():
    for page in PAGES:
        for path, name in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page.read_text()):
            source = ROOT / path
            assert source.is_file(), f"{page.name} cites {path}, which does not exist"
            assert re.search(rf"^def {name}\(", source.read_text(), flags=re.M), \
                f"{page.name} cites {path}::{name}, which is not defined there"


def test_ablations_page_matches_the_saved_results():
    """Every saved run the page cites is tabulated with the records' own numbers, and its plot shown.

    With no saved run cited the page must say the results are pending.
    """
    from comparisons.figures.results_figures import markdown_table

    text = (DOCS / "ablations.md").read_text()
    cited = sorted(p for p in (DOCS / "results").glob("compare-*") if p.is_dir() and f"docs/results/{p.name}" in text)
    if not cited:
        assert "**Pending.**" in text
        return
    for folder in cited:
        if _has_statistics(folder):  # checked, with its notes, command and machine, by the test below
            continue
        for line in markdown_table(folder).splitlines()[2:]:
            assert line in text, f"ablations.md lacks this row of {folder.name}'s saved results: {line}"
        assert f"figures/ablation-{folder.name.removeprefix('compare-')}.png" in text


def _has_statistics(folder: Path) -> bool:
    """Whether a saved run was made with validation splits and provenance (records carry them)."""
    first = (folder / "results.jsonl").read_text().splitlines()[0]
    return '"environment"' in first and '"val_value"' in first


#: saved runs the README shows (the default run, the same on other seeds, the denoising preset)
README_RUNS = ("compare-digits", "compare-digits-seeds-5-9", "compare-denoise")


@pytest.mark.parametrize("name", [*README_RUNS, "compare-vit"])
def test_readme_and_ablations_show_the_saved_runs(name):
    """The README's and docs/ablations.md's tables of these runs are generated from the saved records
    (scripts/ablation_tables.py): every line of the table, its warnings, the command and the machine
    appear on both pages (the ViT run on the ablations page only)."""
    from comparisons.ablation.report import saved_run_block

    folder = DOCS / "results" / name
    assert _has_statistics(folder), f"{name} was saved without statistics and provenance"
    block = saved_run_block(folder)
    pages = (ROOT / "README.md", DOCS / "ablations.md") if name in README_RUNS else (DOCS / "ablations.md",)
    for page in pages:
        text = " ".join(page.read_text().split())
        for line in block.splitlines():
            if line.strip():
                assert " ".join(line.split()) in text, f"{page.name} lacks this line of {name}: {line}"


def test_mkdocs_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("the docs extra is not installed (pip install -e .[docs]); the site build is not checked")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "index.html").is_file()


def test_performance_page_matches_the_saved_bench_runs():
    """Every row of each cited CPU bench run, and the targets of issues 10 and 20 computed from them, are on the page as saved."""
    import json

    from comparisons.bench.report import markdown
    from comparisons.bench.targets import markdown as targets_markdown

    text = (DOCS / "performance.md").read_text()
    cited = sorted(p for p in (DOCS / "results").glob("bench-cpu*.json") if f"docs/results/{p.name}" in text)
    assert cited, "performance.md cites no saved CPU bench run"
    results = []
    for path in cited:
        data = json.loads(path.read_text())
        results += data["results"]
        for line in markdown(data).splitlines()[2:]:
            assert line in text, f"performance.md lacks this row of {path.name}: {line}"
        assert f"results/{path.with_suffix('.png').name}" in text, f"performance.md does not show {path.stem}'s plot"
    for line in targets_markdown(results).splitlines()[2:]:
        assert line in text, f"performance.md lacks this target row: {line}"
