"""Docs and docstrings cite papers (authors, title, venue, year), never files outside the repo (issue 9.14)."""

from pathlib import Path

ROOT = Path(__file__).parents[1]
#: where the project's prose lives: docs, the README, every module's docstrings and comments
SOURCES = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"),
           *(p for d in ("neighborhoods", "operators", "comparisons") for p in (ROOT / d).rglob("*.py"))]


def test_no_citation_points_outside_the_repo():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in SOURCES
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "shared/papers" in line or "/work/" in line]
    assert not offenders, f"cite the paper, not a local file: {offenders}"


def test_spectral_doc_cites_its_papers():
    text = " ".join((ROOT / "docs" / "spectral.md").read_text().split())
    assert "## References" in text
    for citation in ("Unifying Nonlocal Blocks for Neural Networks. ICCV 2021", "Non-local Neural Networks. CVPR 2018",
                     "Compact Generalized Non-local Network. NeurIPS 2018"):
        assert citation in text
