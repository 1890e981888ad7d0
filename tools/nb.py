"""Re-sync a jupytext pair and re-execute it: ``python tools/nb.py book/02_serw.md [more.md ...]``.

The MyST markdown file is the source; its paired ``.ipynb`` is rewritten from it and executed
in ``book/`` (at the scale set by ``$BOOK_SCALE``, default ``ci``), so the committed notebook
carries fresh outputs for nbval. ``--all`` does every ``book/*.md`` notebook.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def notebooks() -> list[Path]:
    """Every MyST notebook under book/ (a .md with a jupytext header)."""
    return sorted(p for p in (REPO / "book").glob("*.md") if p.read_text().startswith("---\njupytext:"))


def execute(md: Path, timeout: int = 1800) -> float:
    """Write ``md``'s paired ``.ipynb`` from ``md``, execute it in place, return the seconds it took."""
    nb = jupytext.read(md)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(md.parent)}}).execute()
    jupytext.write(nb, md.with_suffix(".ipynb"))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--all", action="store_true", help="every notebook under book/")
    args = ap.parse_args()
    files = notebooks() if args.all else [f.resolve() for f in args.files]
    if not files:
        sys.exit("name one or more book/*.md files, or --all")
    for md in files:
        print(f"{md.name}: executed in {execute(md):.1f} s", flush=True)


if __name__ == "__main__":
    main()
