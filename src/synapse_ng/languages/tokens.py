"""The token every lexer of this package produces, and the language argument every function accepts.

A `Token` is a span of the source with a kind; the lexers (`rust.py`, `c.py`, `wat.py`) cover every
character of their input with exactly one token, so a consumer can skip whitespace and comments, or
rebuild the text, without re-lexing. Kinds: ws, comment, string, char, lifetime, ident, number, punct,
and for C `eol` (a zero-width token where a preprocessor directive ends) and `header` (a `<...>` or
`"..."` header name after an include-like directive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..models import CodeLanguage

__all__ = ["Token", "as_language", "glue", "match_end"]


@dataclass(frozen=True)
class Token:
    """kind: see the module docstring; start/end: offsets in the source; text: source[start:end]."""

    kind: str
    start: int
    end: int
    text: str


def as_language(language: CodeLanguage | str) -> CodeLanguage:
    """A CodeLanguage from itself or its name ("rust", "C", ...)."""
    return language if isinstance(language, CodeLanguage) else CodeLanguage.from_name(str(language))


def match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where `pattern` (one that matches at pos by construction, e.g. after its opening quote was
    seen) ends; pos + 1 if it does not, so a lexer always advances."""
    m = pattern.match(text, pos)
    return m.end() if m else pos + 1


def glue(tokens: list[Token], table: tuple[str, ...]) -> list[Token]:
    """Merge adjacent one-character punct tokens into the multi-character operators of `table`
    (longest first, left to right): the lexers yield single characters as rustc_lexer does, and each
    consumer glues what its own reading needs (`->` for the item splitter, `::` for the policy)."""
    out: list[Token] = []
    i, n = 0, len(tokens)
    while i < n:
        token = tokens[i]
        if token.kind == "punct":
            for operator in table:
                k = len(operator)
                run = tokens[i : i + k]
                if (
                    len(run) == k
                    and all(t.kind == "punct" and len(t.text) == 1 for t in run)
                    and all(a.end == b.start for a, b in zip(run, run[1:], strict=False))
                    and "".join(t.text for t in run) == operator
                ):
                    out.append(Token("punct", token.start, run[-1].end, operator))
                    i += k
                    break
            else:
                out.append(token)
                i += 1
        else:
            out.append(token)
            i += 1
    return out
