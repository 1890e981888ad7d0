"""Crash-safe file writes, shared by checkpoints (:mod:`lib.train`) and result records
(:mod:`lib.experiments.store`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through ``write(fh)`` so that a crash never leaves half a file.

    ``write`` fills a hidden temporary file ``.NAME.tmpPID`` in the same folder (binary mode);
    it is flushed and fsync'ed, renamed over ``path`` (atomic on POSIX), and the folder is
    fsync'ed where the OS allows, so that the rename itself is durable. A crash at any moment
    leaves the previous file or the new one; a failed write leaves the previous file and no
    temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path
