"""Sphinx extension: serve MathJax 3 from the book's own static files, so math renders offline.

MathJax comes from the PyPI package ``django-static-mathjax`` (module ``mathjax``); after the
HTML build its ``es5`` folder (the ``tex-mml-chtml`` component and its fonts) is copied to
``_static/mathjax`` and ``mathjax_path`` points there. No third-party code is committed.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _es5_folder() -> Path:
    try:
        import mathjax
    except ImportError as err:
        raise RuntimeError("MathJax for offline pages needs 'pip install django-static-mathjax'") from err
    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / "tex-mml-chtml.js").exists():
        raise RuntimeError(f"{folder} holds no tex-mml-chtml.js: reinstall django-static-mathjax")
    return folder


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(_es5_folder(), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def setup(app):
    _es5_folder()
    app.config.mathjax_path = "mathjax/tex-mml-chtml.js"
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
