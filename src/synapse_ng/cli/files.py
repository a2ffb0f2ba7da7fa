"""The files and folders a person names on the command line, read and written the same way by every command.

Every failure is a UsageError that names the path and says what is wrong with it (exit 1), never a
traceback; every write is atomic (fsutil), so a command that fails leaves no half-written module or
evidence record behind.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..fsutil import write_atomically

WORKSPACE_HELP = "(default: $SYNAPSE_WORKSPACE or $EVOLUTION_WORKSPACE, else ~/.local/share/synapse-ng)"


def read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: {_why_unreadable(error)}") from None


def _why_unreadable(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file; check the path"
    if isinstance(error, IsADirectoryError):
        return "is a directory, expected a file"
    return f"cannot read it ({error.strerror})"


def read_text(path: str) -> str:
    """A UTF-8 source file (a program, a block)."""
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def write_file(path: str | Path, data: bytes) -> None:
    try:
        write_atomically(path, data)
    except OSError as error:
        raise UsageError(f"{path}: cannot write there ({error.strerror})") from None


def workspace(path: str | None) -> Path:
    """Where runs are kept: --workspace, else $SYNAPSE_WORKSPACE ($EVOLUTION_WORKSPACE), else the user data
    directory."""
    from ..settings import settings  # pydantic: only the commands that keep runs pay for its import

    return Path(path) if path else settings().default_workspace()
