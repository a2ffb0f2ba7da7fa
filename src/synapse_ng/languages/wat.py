"""The WebAssembly text lexer: `;;` line comments, nested `(; ... ;)` block comments, strings,
parentheses, and atoms (keywords, `$names`, numbers). Enough for the item splitter and the tuner to
know what is code; wat2wasm (through wasmtime) is the real parser, and nothing here is a security check.
"""

from __future__ import annotations

import re

from .tokens import Token, match_end

__all__ = ["lex_wat"]

_NUMBER = re.compile(
    r"[+-]?(?:0x[0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
    r"|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?"
    r"|inf|nan(?::0x[0-9a-fA-F_]+)?)$"
)
_SPACE = re.compile(r"\s+")
_ATOM = re.compile(r'[^\s()";]+')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)


def _block_comment_end(s: str, i: int) -> int:
    # (; ... ;) nests: (; (; ;) ;) is one comment.
    depth, j = 0, i
    while j < len(s):
        if s.startswith("(;", j):
            depth, j = depth + 1, j + 2
        elif s.startswith(";)", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(s)


def _line_end(s: str, i: int) -> int:
    j = s.find("\n", i)
    return len(s) if j < 0 else j


def lex_wat(source: str) -> list[Token]:
    """Every character of `source` in exactly one token: ws, comment, string, punct (a parenthesis),
    number, ident (any other atom, `;` alone included)."""
    s, i, out = source, 0, []
    while i < len(s):
        c = s[i]
        if c.isspace():
            end, kind = match_end(_SPACE, s, i), "ws"
        elif s.startswith(";;", i):
            end, kind = _line_end(s, i), "comment"
        elif s.startswith("(;", i):
            end, kind = _block_comment_end(s, i), "comment"
        elif c == '"':
            end, kind = match_end(_STRING, s, i), "string"
        elif c in "()":
            end, kind = i + 1, "punct"
        else:
            m = _ATOM.match(s, i)
            end = m.end() if m else i + 1
            kind = "number" if _NUMBER.match(s[i:end]) else "ident"
        out.append(Token(kind, i, end, s[i:end]))
        i = end
    return out
