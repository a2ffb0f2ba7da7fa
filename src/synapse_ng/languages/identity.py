"""Source identity: when two candidate blocks are the same program.

Two blocks that differ only in comments, indentation, blank lines or spacing between tokens are the
same candidate, and the search must not pay to compile and measure it twice; any change to a token
(a literal, a name, an operator) makes a new one. The normal form is the token stream without
comments and whitespace, so it follows the language's own lexer: a `//` inside a string is not a
comment, and C directives keep their line ends (`#define A 1` then `int x;` is not `#define A 1 int x;`).
"""

from __future__ import annotations

import hashlib

from ..models import CodeLanguage
from .scan import tokenize

__all__ = ["normalize_source", "source_hash"]


def normalize_source(block: str, language: CodeLanguage | str) -> str:
    """The block's tokens without comments and whitespace, one space apart (C directives end a line)."""
    parts: list[str] = []
    for token in tokenize(block.replace("\r\n", "\n"), language):
        if token.kind in ("ws", "comment"):
            continue
        parts.append("\n" if token.kind == "eol" else token.text)
    return " ".join(parts).replace(" \n ", "\n").strip()


def source_hash(block: str, language: CodeLanguage | str) -> str:
    """sha256 (hex) of `normalize_source(block, language)`: equal for comment/whitespace variants."""
    return hashlib.sha256(normalize_source(block, language).encode("utf-8")).hexdigest()
