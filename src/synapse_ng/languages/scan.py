"""`tokenize(source, language)`: the one entry point to the lexers, as the tools read code.

Rust tokens come from the rustc-faithful lexer with its operators glued (`->`, `::`, `<<=`), so the
item splitter sees `=>` as one token and never as `=`; C tokens from the clang-faithful lexer under
clang's defaults; WAT from the WAT lexer. AssemblyScript (TypeScript-like) is read with the Rust lexer,
which is close enough for its comments and strings.
"""

from __future__ import annotations

from ..models import CodeLanguage
from .c import lex_c
from .rust import lex_rust
from .tokens import Token, as_language, glue
from .wat import lex_wat

__all__ = ["tokenize"]

_RUST_OPERATORS = (
    "<<=",
    ">>=",
    "...",
    "..=",
    "::",
    "->",
    "=>",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "+=",
    "-=",
    "*=",
    "/=",
    "%=",
    "^=",
    "&=",
    "|=",
    "<<",
    ">>",
    "..",
)


def tokenize(source: str, language: CodeLanguage | str) -> list[Token]:
    """Every character of `source` in exactly one token, in order (kinds: see `tokens.Token`)."""
    language = as_language(language)
    if language is CodeLanguage.C:
        return lex_c(source)
    if language is CodeLanguage.WAT:
        return lex_wat(source)
    tokens = [Token("punct", t.start, t.end, t.text) if t.kind == "unknown" else t for t in lex_rust(source)]
    return glue(tokens, _RUST_OPERATORS)
