"""Shortening text for display: log lines, error messages and JSON paths quote at most so much of what
another party sent, so a hostile or huge value never floods a log or a response."""

from __future__ import annotations

from typing import Any

ELLIPSIS = "..."


def clip(text: str, limit: int) -> str:
    """`text`, or its first characters and "..." so that the whole is `limit` characters long."""
    return text if len(text) <= limit else text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def clip_start(text: str, limit: int) -> str:
    """`text`, or "..." and its last characters (for paths and logs, whose end says the most)."""
    return text if len(text) <= limit else ELLIPSIS + text[-max(limit - len(ELLIPSIS), 0) :]


def last_lines(text: str, count: int) -> str:
    """The last `count` non-empty lines of `text` (a compiler's or a worker's log), joined by newlines."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def show_value(value: Any, limit: int = 80) -> str:
    """An untrusted value as an error message quotes it: its repr, at most `limit` characters and a count."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        return f"a {value.bit_length()}-bit integer"  # repr() of an int over 4300 digits raises ValueError
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"{ELLIPSIS} ({len(text)} characters)"
