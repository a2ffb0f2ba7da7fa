"""Durable file writes shared by every part that writes a file others will read (keys, models, artifacts,
compiled modules, caches): a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_directory(directory: Path) -> None:
    """Makes a rename or link in `directory` durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, mode: int = 0o644, exclusive: bool = False) -> Iterator[BinaryIO]:
    """A file object whose content appears at `path` only if the `with` block completes.

    The bytes go to a private temporary file beside `path` (same file system, so the final step is atomic),
    are flushed to disk, given `mode`, then renamed over `path`; or, with `exclusive`, hard-linked to it, so
    that of two writers racing to create the file exactly one wins and the other gets FileExistsError
    (a key must never be replaced under a running node). Any exception removes the temporary file.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), mode)  # mkstemp's 0600 is right only for secrets
            yield out
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            os.link(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_directory(path.parent)


def write_atomically(path: str | Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """`data` at `path`, all of it or nothing (see atomic_writer)."""
    with atomic_writer(path, mode=mode, exclusive=exclusive) as out:
        out.write(data)
