"""The languages candidates are written in (Rust, C, WAT): how their source is lexed and split.

A low package: it depends on `synapse_ng.models` only, and everything that reads code uses it, the
source policy (`toolchain/policy`), extraction and edits, the tuner, the prompts and source identity, so
that all of them agree on what is a comment, a string or code.

    tokens.py    Token, as_language, glue (multi-character operators)
    rust.py      the Rust lexer, a transcription of rustc_lexer
    c.py         the C lexer: clang's translation phases 1-2 and tokenisation, with its configurations
    wat.py       the WAT lexer
    scan.py      tokenize(source, language): the lexers as the tools read code
    items.py     top_level_items, find_functions, root_functions, Item
    identity.py  normalize_source, source_hash: when two blocks are the same candidate
"""

from .identity import normalize_source, source_hash
from .items import Item, find_functions, root_functions, top_level_items
from .scan import tokenize
from .tokens import Token, as_language

__all__ = [
    "Item",
    "Token",
    "as_language",
    "find_functions",
    "normalize_source",
    "root_functions",
    "source_hash",
    "tokenize",
    "top_level_items",
]
