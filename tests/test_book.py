"""The book's structure: every chapter is a jupytext pair whose code cells agree, and in the toc."""

import json
from pathlib import Path

import jupytext
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PAIRS = sorted(p for p in (REPO / "book").glob("*.md") if p.read_text().startswith("---\njupytext:"))


def code_cells(nb) -> list[str]:
    return [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in nb["cells"] if c["cell_type"] == "code"]


def test_every_chapter_is_a_pair():
    assert len(PAIRS) >= 7
    for md in PAIRS:
        assert md.with_suffix(".ipynb").exists(), f"{md.name} has no paired .ipynb: run python tools/nb.py {md}"


@pytest.mark.parametrize("md", PAIRS, ids=lambda p: p.name)
def test_pair_code_cells_agree(md):
    ipynb = md.with_suffix(".ipynb")
    text_cells = code_cells(jupytext.read(md))
    executed = json.loads(ipynb.read_text())
    assert code_cells(executed) == text_cells, f"{ipynb.name} is stale: run python tools/nb.py {md}"
    assert all(c.get("execution_count") for c in executed["cells"] if c["cell_type"] == "code"), (
        f"{ipynb.name} has unexecuted cells: run python tools/nb.py {md}")


def test_toc_lists_every_page():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    listed = set()

    def walk(entries):
        for e in entries:
            listed.add(e["file"])
            walk(e.get("sections", []))

    for part in toc["parts"]:
        walk(part["chapters"])
    pages = {f"book/{p.stem}" for p in (REPO / "book").glob("*.md")} - {toc["root"]}
    assert pages == listed
