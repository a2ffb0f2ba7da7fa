"""From a model's answer to a candidate EVOLVE block, and the source identity used to skip duplicates.

    extract_candidate(text, parent_block, language, *, component=None) -> Extraction
    normalize_source(block, language) -> str      comments and whitespace removed (token by token)
    source_hash(block, language) -> str           sha256 of the normalised form

What `extract_candidate` copes with, in this order:

1. CRLF / CR line endings, `<think>...</think>` reasoning sections, an empty answer (kind "none").
2. SEARCH/REPLACE edits anywhere in the answer, fenced or not::

       <<<<<<< SEARCH
       old lines
       =======
       new lines
       >>>>>>> REPLACE

   applied in order to the *parent block* only (never the harness): exact whole lines first, then any
   exact substring, then a line-by-line match that ignores whitespace and blank lines (the replacement
   is re-indented by the same offset). One SEARCH that matches nowhere fails the whole answer, and the
   error quotes it (and says when it quoted the fixed harness instead of the block). Kind "edits".
3. Otherwise code: among the fenced code blocks, those tagged with the language (rust/rs, c/h,
   wat/wast) that define the required function(s) win, then any fence that defines them, else the
   longest fence. Several winners: one that differs from the parent, the last of those (models that
   quote the old code first put the answer last). No fence at all: the code region of the text, from
   the first code-like line before the required function's definition to the end of the last item
   followed by something that is not code (prose before and after is dropped).
4. A whole program with EVOLVE markers gives the code between the markers (a lone START or END marker
   is honoured too); harness changes outside the markers are discarded. Kind "program".
5. A whole program *without* markers (the model copied the skeleton and edited the function): every
   top-level item that the skeleton's harness already defines (includes, types, constants, buffers,
   exported entry points, `mod harness`, a C prototype of the block's function) is removed, and what is
   left is the block. Kind "program". This needs the harness: pass `component`, or it is inferred from
   the parent block (the registered component whose required function the parent block defines).
   Without a harness (an empty parent block) the code is returned as it is.
   Kind "program" also when a block merely repeats some harness items (they are dropped all the same).
6. A `main` function (a usage example) is dropped unless the parent block has one. Helpers that the
   parent block defines and the answer calls but leaves out ("the rest is unchanged") are copied
   from the parent, ahead of the answer's code (C needs them declared first).
7. When the required function is known (from the component or the parent block: the functions of the
   block that nothing else in the block calls), an answer that does not define it is refused with an
   error naming it, rather than costing a compile.

The "required function" of a component is a function its baseline block defines and its harness calls
(`priority`, `tally_votes`, `choose_peers`); `required_functions(component, language)` computes it.

The module also holds the small lexers (Rust, C, WAT) and the top-level item splitter that
`prompts.py` and `tuning.py` share; they understand comments, strings, raw strings, char literals and
lifetimes, so nothing inside a comment or a string is mistaken for code.
"""

from __future__ import annotations

import functools
import hashlib
import re
import textwrap
from dataclasses import dataclass, field

from ..components.base import EVOLVE_END, EVOLVE_START, Component, split_skeleton
from ..errors import SynapseError
from ..models import CodeLanguage

__all__ = [
    "Extraction",
    "Item",
    "Token",
    "extract_candidate",
    "find_functions",
    "normalize_source",
    "required_functions",
    "source_hash",
    "tokenize",
    "top_level_items",
]


@dataclass(frozen=True)
class Extraction:
    """block: the candidate EVOLVE block (None when there is none); kind: "block", "edits", "program"
    or "none"; error: why there is no block (or None)."""

    block: str | None
    kind: str
    error: str | None = None


def _language(language: CodeLanguage | str) -> CodeLanguage:
    return language if isinstance(language, CodeLanguage) else CodeLanguage.from_name(str(language))


# ================================================================================================ lexers


@dataclass(frozen=True)
class Token:
    """kind: ws, comment, string, char, lifetime, ident, number, punct, eol (end of a C directive)."""

    kind: str
    start: int
    end: int
    text: str


_RUST_PUNCT = ("<<=", ">>=", "...", "..=", "::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=",
               "*=", "/=", "%=", "^=", "&=", "|=", "<<", ">>", "..")  # fmt: skip
_C_PUNCT = ("<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "*=", "/=",
            "%=", "+=", "-=", "&=", "^=", "|=", "##")  # fmt: skip
_RUST_RAW = re.compile(r'b?r(#*)"')
_RUST_EXPONENT = re.compile(r"[eE][+-]?[0-9_]*[0-9]")
_RUST_CHAR = re.compile(r"'(?:[^'\\\n]|\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]{1,8}\}|.))'")
_WAT_NUMBER = re.compile(
    r"[+-]?(?:0x[0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?"
    r"|inf|nan(?::0x[0-9a-fA-F_]+)?)$"
)


def _is_ident_start(c: str) -> bool:
    return c == "_" or c.isalpha()


def _is_ident_char(c: str) -> bool:
    return c == "_" or c.isalnum()


class _Scanner:
    def __init__(self, text: str, language: CodeLanguage) -> None:
        self.s = text
        self.n = len(text)
        self.language = language
        self.tokens: list[Token] = []

    def add(self, kind: str, start: int, end: int) -> int:
        self.tokens.append(Token(kind, start, end, self.s[start:end]))
        return end

    def while_(self, i: int, pred) -> int:
        while i < self.n and pred(self.s[i]):
            i += 1
        return i

    def line_end(self, i: int) -> int:
        j = self.s.find("\n", i)
        return self.n if j < 0 else j

    def quoted(self, i: int, quote: str, stop_at_newline: bool) -> int:
        """End of a quoted literal starting at i (the opening quote); unterminated: end of line or text."""
        j = i + 1
        while j < self.n:
            c = self.s[j]
            if c == "\\":
                j += 2
                continue
            if c == quote:
                return j + 1
            if c == "\n" and stop_at_newline:
                return j
            j += 1
        return self.n

    def nested_comment(self, i: int, open_: str, close: str, nested: bool) -> int:
        depth, j = 0, i
        while j < self.n:
            if self.s.startswith(open_, j) and (nested or depth == 0):
                depth += 1
                j += len(open_)
            elif self.s.startswith(close, j):
                depth -= 1
                j += len(close)
                if depth == 0:
                    return j
            else:
                j += 1
        return self.n

    def punct(self, i: int, table: tuple[str, ...]) -> int:
        for p in table:
            if self.s.startswith(p, i):
                return self.add("punct", i, i + len(p))
        return self.add("punct", i, i + 1)

    # ------------------------------------------------------------------ Rust

    def rust(self, i: int = 0, limit: int | None = None) -> None:
        s, n = self.s, self.n if limit is None else limit
        while i < n:
            c = s[i]
            if c.isspace():
                i = self.add("ws", i, self.while_(i, str.isspace))
            elif s.startswith("//", i):
                i = self.add("comment", i, self.line_end(i))
            elif s.startswith("/*", i):
                i = self.add("comment", i, self.nested_comment(i, "/*", "*/", nested=True))
            elif c in "br" and (m := _RUST_RAW.match(s, i)):
                close = '"' + m.group(1)
                j = s.find(close, m.end())
                i = self.add("string", i, self.n if j < 0 else j + len(close))
            elif c == '"' or (c == "b" and s.startswith('b"', i)):
                start = i + (c == "b")
                i = self.add("string", i, self.quoted(start, '"', stop_at_newline=False))
            elif c == "'" or (c == "b" and s.startswith("b'", i)):
                start = i + (c == "b")
                m = _RUST_CHAR.match(s, start)
                if m:
                    i = self.add("char", i, m.end())
                elif c == "'" and start + 1 < self.n and _is_ident_start(s[start + 1]):
                    i = self.add("lifetime", i, self.while_(start + 1, _is_ident_char))
                elif c == "b":
                    i = self.add("ident", i, i + 1)
                else:
                    i = self.add("punct", i, i + 1)
            elif _is_ident_start(c):
                i = self.add("ident", i, self.while_(i, _is_ident_char))
            elif c.isdigit():
                i = self.add("number", i, self.rust_number(i))
            else:
                i = self.punct(i, _RUST_PUNCT)

    def rust_number(self, i: int) -> int:
        s = self.s
        if s[i] == "0" and i + 1 < self.n and s[i + 1] in "xob":
            digits = "0123456789abcdefABCDEF_" if s[i + 1] == "x" else "0123456789_"
            j = self.while_(i + 2, lambda ch: ch in digits)
            return self.while_(j, _is_ident_char)  # a suffix (u32, i64, ...)
        j = self.while_(i, lambda ch: ch.isdigit() or ch == "_")
        if j < self.n and s[j] == "." and not (j + 1 < self.n and (s[j + 1] == "." or _is_ident_start(s[j + 1]))):
            j = self.while_(j + 1, lambda ch: ch.isdigit() or ch == "_")
        m = _RUST_EXPONENT.match(s, j)
        if m:
            j = m.end()
        return self.while_(j, _is_ident_char)

    # ------------------------------------------------------------------ C

    def c(self, i: int = 0, limit: int | None = None, in_directive: bool = False) -> None:
        s, n = self.s, self.n if limit is None else limit
        line_start = True
        while i < n:
            c = s[i]
            if c.isspace():
                j = self.while_(i, str.isspace)
                j = min(j, n)
                if "\n" in s[i:j]:
                    line_start = True
                i = self.add("ws", i, j)
                continue
            if c == "#" and line_start and not in_directive:
                end = self._directive_end(i)
                self.c(i, end, in_directive=True)
                self.add("eol", end, end)
                i = end
                continue
            line_start = False
            if s.startswith("//", i):
                i = self.add("comment", i, min(n, self.line_end(i)))
            elif s.startswith("/*", i):
                i = self.add("comment", i, self.nested_comment(i, "/*", "*/", nested=False))
            elif c == '"':
                i = self.add("string", i, min(n, self.quoted(i, '"', stop_at_newline=True)))
            elif c == "'":
                end = min(n, self.quoted(i, "'", stop_at_newline=True))
                if end > i + 1 and s[end - 1] == "'":
                    i = self.add("char", i, end)
                else:
                    i = self.add("punct", i, i + 1)
            elif _is_ident_start(c):
                i = self.add("ident", i, self.while_(i, _is_ident_char))
            elif c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
                j = i + 1
                while j < n:
                    if s[j] in "eEpP" and j + 1 < n and s[j + 1] in "+-":
                        j += 2
                    elif _is_ident_char(s[j]) or s[j] == ".":
                        j += 1
                    else:
                        break
                i = self.add("number", i, j)
            else:
                i = self.punct(i, _C_PUNCT)

    def _directive_end(self, i: int) -> int:
        """End of a preprocessor directive: the first newline not escaped by a backslash (comments span)."""
        j = i
        while j < self.n:
            if self.s.startswith("/*", j):
                j = self.nested_comment(j, "/*", "*/", nested=False)
                continue
            if self.s[j] == "\n" and not (j > 0 and self.s[j - 1] == "\\"):
                return j
            j += 1
        return self.n

    # ------------------------------------------------------------------ WAT

    def wat(self) -> None:
        s, i = self.s, 0
        while i < self.n:
            c = s[i]
            if c.isspace():
                i = self.add("ws", i, self.while_(i, str.isspace))
            elif s.startswith(";;", i):
                i = self.add("comment", i, self.line_end(i))
            elif s.startswith("(;", i):
                i = self.add("comment", i, self.nested_comment(i, "(;", ";)", nested=True))
            elif c == '"':
                i = self.add("string", i, self.quoted(i, '"', stop_at_newline=False))
            elif c in "()":
                i = self.add("punct", i, i + 1)
            else:
                j = self.while_(i, lambda ch: not ch.isspace() and ch not in '()";')
                j = max(j, i + 1)
                i = self.add("number" if _WAT_NUMBER.match(s[i:j]) else "ident", i, j)


def tokenize(source: str, language: CodeLanguage | str) -> list[Token]:
    """Every character of `source` in exactly one token, in order."""
    language = _language(language)
    scanner = _Scanner(source, language)
    if language is CodeLanguage.C:
        scanner.c()
    elif language is CodeLanguage.WAT:
        scanner.wat()
    else:  # Rust, and the C-like AssemblyScript / TypeScript family is close enough for comments and strings
        scanner.rust()
    return scanner.tokens


def normalize_source(block: str, language: CodeLanguage | str) -> str:
    """The block's tokens without comments and whitespace, one space apart (C directives end a line).
    Two blocks that differ only in comments, indentation, blank lines or spacing between tokens have
    the same normal form; any change to a token (a literal, a name, an operator) changes it."""
    parts: list[str] = []
    for token in tokenize(block.replace("\r\n", "\n"), language):
        if token.kind in ("ws", "comment"):
            continue
        if token.kind == "eol":
            parts.append("\n")
        else:
            parts.append(token.text)
    return " ".join(parts).replace(" \n ", "\n").strip()


def source_hash(block: str, language: CodeLanguage | str) -> str:
    """sha256 (hex) of `normalize_source(block, language)`: equal for comment/whitespace variants."""
    return hashlib.sha256(normalize_source(block, language).encode("utf-8")).hexdigest()


# ================================================================================ top-level items

_C_TYPE_WORDS = frozenset(
    [
        "void",
        "char",
        "short",
        "int",
        "long",
        "float",
        "double",
        "signed",
        "unsigned",
        "bool",
        "_Bool",
        "const",
        "volatile",
        "static",
        "inline",
        "extern",
        "register",
        "struct",
        "union",
        "enum",
        "typedef",
        "restrict",
        "size_t",
        "int8_t",
        "int16_t",
        "int32_t",
        "int64_t",
        "uint8_t",
        "uint16_t",
        "uint32_t",
        "uint64_t",
        "intptr_t",
        "uintptr_t",
        "return",
        "sizeof",
        "if",
        "while",
        "for",
        "switch",
    ]
)


@dataclass(frozen=True)
class Item:
    """One top-level item of a program or block.

    start: where it begins, leading comments included; code_start: its first code token; end: after its
    last token. kind: fn (a definition with a body), decl (a prototype), type, static, const, use, impl,
    mod, macro, directive, other. name: what it defines (None when unknown). idents: the identifiers it
    mentions. signature: for fn and decl, the text from its first code token to its body."""

    start: int
    code_start: int
    end: int
    kind: str
    name: str | None
    idents: frozenset[str] = field(default=frozenset(), repr=False)
    signature: str | None = None


def top_level_items(code: str, language: CodeLanguage | str) -> list[Item]:
    """Split Rust or C code into its top-level items (for WAT: its `(func ...)` forms)."""
    language = _language(language)
    if language is CodeLanguage.WAT:
        return _wat_items(code)
    tokens = tokenize(code, language)
    items: list[Item] = []
    pending: int | None = None  # start of the comments before the next item
    current: list[Token] = []
    depth = 0
    for token in tokens:
        if token.kind == "ws":
            continue
        if not current:
            if token.kind == "comment":
                pending = token.start if pending is None else pending
                continue
            if token.text == ";" and items:  # a stray `;` after an item (`};` in Rust) belongs to it
                items[-1] = _replace_end(items[-1], token.end)
                continue
        current.append(token)
        if token.kind == "comment":
            continue
        if token.kind == "eol" and language is CodeLanguage.C and current[0].text == "#":
            items.append(_make_item(code, current, pending, language))
            current, pending, depth = [], None, 0
            continue
        if current[0].text == "#" and language is CodeLanguage.C:
            continue  # inside a directive: wait for its end of line
        if token.text in "([{" and token.kind == "punct":
            depth += 1
        elif token.text in ")]}" and token.kind == "punct":
            depth = max(0, depth - 1)
            if token.text == "}" and depth == 0 and not _waits_for_semicolon(current, language):
                items.append(_make_item(code, current, pending, language))
                current, pending = [], None
        elif token.text == ";" and depth == 0:
            items.append(_make_item(code, current, pending, language))
            current, pending = [], None
    if current:
        code_tokens = [t for t in current if t.kind != "comment"]
        if code_tokens:
            items.append(_make_item(code, current, pending, language))
    return items


def _replace_end(item: Item, end: int) -> Item:
    return Item(item.start, item.code_start, end, item.kind, item.name, item.idents, item.signature)


def _code_tokens(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("comment", "ws", "eol")]


def _first_brace(tokens: list[Token]) -> int | None:
    """Index of the first `{` at depth 0 of the item."""
    depth = 0
    for index, token in enumerate(tokens):
        if token.kind != "punct":
            continue
        if token.text == "{" and depth == 0:
            return index
        if token.text in "([{":
            depth += 1
        elif token.text in ")]}":
            depth -= 1
    return None


def _waits_for_semicolon(tokens: list[Token], language: CodeLanguage) -> bool:
    """Whether an item whose braces just closed continues to a `;` (initialisers, C types, Rust `use`)."""
    code = _code_tokens(tokens)
    brace = _first_brace(code)
    if brace is None:
        return False
    before = code[:brace]
    if any(t.text == "=" for t in _depth0(before)):
        return True
    if language is CodeLanguage.C:
        return not (before and before[-1].text == ")")
    words = [t.text for t in before if t.kind == "ident"]
    return bool(words) and words[0] == "use" or "use" in words[:2] and words[0] == "pub"


def _depth0(tokens: list[Token]) -> list[Token]:
    out, depth = [], 0
    for token in tokens:
        if token.kind == "punct" and token.text in ")]}":
            depth -= 1
        if depth == 0:
            out.append(token)
        if token.kind == "punct" and token.text in "([{":
            depth += 1
    return out


def _make_item(code: str, tokens: list[Token], pending: int | None, language: CodeLanguage) -> Item:
    code_tokens = _code_tokens(tokens)
    first = code_tokens[0] if code_tokens else tokens[0]
    start = pending if pending is not None else first.start
    end = max(t.end for t in tokens)
    idents = frozenset(t.text for t in code_tokens if t.kind == "ident")
    if language is CodeLanguage.C:
        kind, name, signature = _c_item(code, code_tokens)
    else:
        kind, name, signature = _rust_item(code, code_tokens)
    return Item(start, first.start, end, kind, name, idents, signature)


def _join(tokens: list[Token]) -> str:
    return " ".join(t.text for t in tokens)


def _signature(code: str, tokens: list[Token], first: int) -> str:
    brace = _first_brace(tokens)
    stop = tokens[brace].start if brace is not None else tokens[-1].end
    text = code[tokens[first].start : stop].rstrip()
    return text[:-1].rstrip() if text.endswith(";") else text


def _rust_item(code: str, tokens: list[Token]) -> tuple[str, str | None, str | None]:
    i, n = 0, len(tokens)
    while i < n:  # attributes, visibility and qualifiers
        t = tokens[i]
        if t.text == "#":
            j = i + 1 + (i + 1 < n and tokens[i + 1].text == "!")
            if j < n and tokens[j].text == "[":
                depth = 0
                while j < n:
                    if tokens[j].text == "[":
                        depth += 1
                    elif tokens[j].text == "]":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                i = j + 1
                continue
            break
        if t.text == "pub":
            i += 1
            if i < n and tokens[i].text == "(":
                while i < n and tokens[i].text != ")":
                    i += 1
                i += 1
            continue
        if t.text in ("unsafe", "async", "default") or (
            t.text == "const" and i + 1 < n and tokens[i + 1].text in ("fn", "unsafe")
        ):
            i += 1
            continue
        if t.text == "extern" and i + 1 < n and tokens[i + 1].kind == "string":
            i += 2
            continue
        break
    sig_start = i
    if i >= n:
        return "other", None, None
    word = tokens[i].text

    def next_ident(j: int) -> str | None:
        while j < n and tokens[j].text == "mut":
            j += 1
        return tokens[j].text if j < n and tokens[j].kind == "ident" else None

    if word == "fn":
        kind = "fn" if _first_brace(tokens) is not None else "decl"
        return kind, next_ident(i + 1), _signature(code, tokens, sig_start)
    if word in ("struct", "enum", "union", "trait", "type"):
        return "type", next_ident(i + 1), None
    if word == "mod":
        return "mod", next_ident(i + 1), None
    if word == "static":
        return "static", next_ident(i + 1), None
    if word == "const":
        return "const", next_ident(i + 1), None
    if word == "use":
        return "use", "use " + _join(tokens[i:]).rstrip(" ;"), None
    if word == "impl":
        brace = _first_brace(tokens)
        return "impl", "impl " + _join(tokens[i + 1 : brace if brace is not None else n]), None
    if word == "macro_rules" and i + 2 < n:
        return "macro", tokens[i + 2].text, None
    if word == "extern" and i + 1 < n and tokens[i + 1].text == "crate":
        return "use", "extern crate " + (next_ident(i + 2) or ""), None
    return "other", None, None


def _c_item(code: str, tokens: list[Token]) -> tuple[str, str | None, str | None]:
    if not tokens:
        return "other", None, None
    if tokens[0].text == "#":
        directive = tokens[1].text if len(tokens) > 1 else ""
        if directive == "define" and len(tokens) > 2:
            return "macro", tokens[2].text, None
        return "directive", "#" + _join(tokens[1:]).replace(" ", ""), None
    depth0 = _depth0(tokens)
    at_depth0 = {t.start for t in depth0}
    words = [t.text for t in tokens if t.kind == "ident"]
    # A function: the first `(` at depth 0 that follows a name (attributes skipped).
    skip_parens = False
    for index, token in enumerate(tokens):
        if token.kind == "ident" and token.text in ("__attribute__", "__declspec", "_Alignas", "alignas"):
            skip_parens = True
            continue
        if token.text == "(" and token.start in at_depth0:
            if skip_parens:
                skip_parens = False
                continue
            previous = tokens[index - 1] if index else None
            if previous is not None and previous.kind == "ident" and previous.text not in _C_TYPE_WORDS:
                brace = _first_brace(tokens)
                if brace is not None and tokens[brace - 1].text == ")":
                    return "fn", previous.text, _signature(code, tokens, 0)
                if brace is None and words and words[0] != "typedef":
                    return "decl", previous.text, _signature(code, tokens, 0)
            break
        if token.text in ("=", "[", "{") and token.start in at_depth0:
            break
    if words and words[0] == "typedef":
        names = [t.text for t in depth0 if t.kind == "ident"]
        return "type", names[-1] if names else None, None
    if words and words[0] in ("struct", "union", "enum") and _first_brace(tokens) is not None and tokens[-1].text == ";":
        named = [t for t in depth0 if t.kind == "ident"]
        if len(named) == 2 or (len(named) == 1 and named[0].text in ("struct", "union", "enum")):
            return "type", " ".join(t.text for t in named[:2]) if len(named) == 2 else None, None
    # A variable: the last name before its initialiser, array bound or end.
    name = None
    for token in depth0:
        if token.text in ("=", "[", ";", ","):
            break
        if token.kind == "ident" and token.text not in _C_TYPE_WORDS:
            name = token.text
    kind = "static" if "static" in words[:3] else ("const" if "const" in words[:2] else "static")
    return kind, name, None


_WAT_FUNC = re.compile(r"\(\s*func\s+\$([^\s()]+)")


def _wat_items(code: str) -> list[Item]:
    """The `(func $name ...)` forms, wherever they are; each with its leading `;;` comments."""
    tokens = [t for t in tokenize(code, CodeLanguage.WAT) if t.kind != "ws"]
    items: list[Item] = []
    for index, token in enumerate(tokens):
        if token.text != "(" or index + 2 >= len(tokens) or tokens[index + 1].text != "func":
            continue
        name_token = tokens[index + 2]
        name = name_token.text[1:] if name_token.text.startswith("$") else None
        depth, j = 0, index
        while j < len(tokens):
            if tokens[j].text == "(":
                depth += 1
            elif tokens[j].text == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        end = tokens[min(j, len(tokens) - 1)].end
        start = token.start
        k = index - 1
        while k >= 0 and tokens[k].kind == "comment":
            start = tokens[k].start
            k -= 1
        body = tokens[index : j + 1]
        idents = frozenset(t.text[1:] for t in body if t.text.startswith("$"))
        line_end = code.find("\n", token.start)
        signature = code[token.start : end if line_end < 0 else min(end, line_end)].rstrip()
        items.append(Item(start, token.start, end, "fn", name, idents, signature))
    return items


def find_functions(code: str, language: CodeLanguage | str) -> list[Item]:
    """The function definitions among the top-level items."""
    return [item for item in top_level_items(code, language) if item.kind == "fn" and item.name]


def _root_functions(block: str, language: CodeLanguage) -> list[str]:
    """The functions of a block that no other function of the block calls (its entry points)."""
    functions = find_functions(block, language)
    names = [f.name for f in functions]
    called = {name for f in functions for name in names if name != f.name and name in f.idents}
    roots = [name for name in names if name not in called]
    return roots or names


@functools.lru_cache(maxsize=64)
def required_functions(component: Component, language: CodeLanguage) -> tuple[str, ...]:
    """Functions the component's baseline block defines and its harness calls: what a block must define."""
    language = _language(language)
    head, block, tail = split_skeleton(component.skeleton(language))
    harness_idents = set()
    for part in (head, tail):
        for token in tokenize(part, language):
            if token.kind in ("ident", "number") or token.text.startswith("$"):
                harness_idents.add(token.text.lstrip("$"))
    defined = [f.name for f in find_functions(block, language)]
    required = tuple(name for name in defined if name in harness_idents)
    return required or tuple(_root_functions(block, language))


@functools.lru_cache(maxsize=64)
def _harness_items(component: Component, language: CodeLanguage) -> dict[str, str]:
    """name -> kind of every top-level item of the skeleton outside the EVOLVE block."""
    head, _, tail = split_skeleton(component.skeleton(language))
    found: dict[str, str] = {}
    for part in (head, tail):
        for item in top_level_items(part, language):
            if item.name:
                found.setdefault(item.name, item.kind)
    return found


def _infer_component(parent_block: str, language: CodeLanguage) -> Component | None:
    """The one registered component whose required functions the parent block defines."""
    if not parent_block.strip():
        return None
    from ..components import all_components

    defined = {f.name for f in find_functions(parent_block, language)}
    matches = []
    for component in all_components().values():
        if language not in component.languages:
            continue
        try:
            required = required_functions(component, language)
        except (ValueError, SynapseError):  # no usable skeleton for this language: not this component
            continue
        if required and set(required) <= defined:
            matches.append(component)
    return matches[0] if len(matches) == 1 else None


# ============================================================================================ fences

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_LANGUAGE_TAGS = {
    CodeLanguage.RUST: {"rust", "rs"},
    CodeLanguage.C: {"c", "h"},
    CodeLanguage.WAT: {"wat", "wast", "wasm", "webassembly"},
    CodeLanguage.ASSEMBLYSCRIPT: {"assemblyscript", "as", "ts", "typescript"},
}


@dataclass(frozen=True)
class _Fence:
    tag: str
    code: str


def _fences(text: str) -> list[_Fence]:
    """Fenced code blocks in order; an unclosed last fence runs to the end of the text."""
    lines = text.split("\n")
    fences: list[_Fence] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        marker, indent = m.group("fence"), m.group("indent")
        words = [w for w in re.split(r"[\s,{}.=]+", m.group("info").lower()) if w]
        tag = words[0] if words else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(marker[0] * 3) and set(stripped) == {marker[0]} and len(stripped) >= len(marker):
                break
            body.append(lines[j][len(indent) :] if indent and lines[j].startswith(indent) else lines[j])
            j += 1
        fences.append(_Fence(tag, textwrap.dedent("\n".join(body))))
        i = j + 1
    return fences


# ===================================================================================== code in prose

_CODE_LINE = {
    CodeLanguage.RUST: re.compile(
        r"^\s*(//|/\*|\*|#!?\[|(pub(\([^)]*\))?\s+)?(fn|use|const|static|struct|enum|impl|type|mod|trait|unsafe|extern|let|macro_rules!)\b|[{}()\]])"
        r"|[;{},]\s*(//.*)?$"
    ),
    CodeLanguage.C: re.compile(
        r"^\s*(//|/\*|\*|#\s*[a-z]+|(static|typedef|struct|enum|union|const|inline|void|int|unsigned|signed|char|long|short|float|double|bool|size_t|u?int(8|16|32|64|ptr)_t)\b|[{}])"
        r"|[;{},]\s*(//.*)?$"
    ),
    CodeLanguage.WAT: re.compile(r"^\s*(;;|\(|\))"),
}


def _definition_pattern(name: str | None, language: CodeLanguage) -> re.Pattern[str]:
    ident = re.escape(name) if name else r"[A-Za-z_]\w*"
    if language is CodeLanguage.C:
        return re.compile(rf"^[ \t]*(?:[A-Za-z_]\w*[ \t\*]+)+{ident}[ \t]*\(", re.MULTILINE)
    if language is CodeLanguage.WAT:
        ident = re.escape(name) if name else r"[^\s()]+"
        return re.compile(rf"^\s*\((?:func\s+\${ident}|module)\b", re.MULTILINE)
    return re.compile(
        rf"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|unsafe|async|extern\s+\"[^\"]*\")\s+)*fn\s+{ident}\b", re.MULTILINE
    )


def _code_region(text: str, language: CodeLanguage, required: tuple[str, ...]) -> str | None:
    """The code in an answer without fences: from the first code-like line before the required
    function's definition to the end of the last top-level item that is followed by code."""
    names = required or (None,)
    starts = [m.start() for name in names if (m := _definition_pattern(name, language).search(text))]
    if not starts:
        return None
    lines = text[: min(starts)].split("\n")
    code_line = _CODE_LINE.get(language, _CODE_LINE[CodeLanguage.RUST])
    first = len(lines) - 1  # the definition's own line
    k = first - 1
    while k >= 0 and (code_line.search(lines[k]) or not lines[k].strip()):
        k -= 1
    begin = sum(len(line) + 1 for line in lines[: k + 1])
    while begin < len(text) and text[begin] == "\n":
        begin += 1
    rest = text[begin:]
    end = _region_end(rest, language, code_line)
    region = rest[:end].rstrip()
    return textwrap.dedent(region) if region.strip() else None


def _region_end(code: str, language: CodeLanguage, code_line: re.Pattern[str]) -> int:
    """Offset where the code stops: after an item boundary whose next non-blank line is not code."""
    if language is CodeLanguage.WAT:
        depth, last = 0, len(code)
        for token in tokenize(code, language):
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
                if depth == 0:
                    last = token.end
                    following = code[last:].lstrip("\n").split("\n", 1)[0]
                    if following.strip() and not code_line.search(following):
                        return last
        return last
    for item in top_level_items(code, language):
        following = code[item.end :].lstrip(" \t;").lstrip("\n")
        next_line = following.split("\n", 1)[0]
        if not following.strip():
            return item.end
        if not code_line.search(next_line) and not next_line.lstrip().startswith(("```", "~~~")):
            return item.end
        if next_line.lstrip().startswith(("```", "~~~")):
            return item.end
    return len(code)


# ============================================================================================ edits

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$")


@dataclass(frozen=True)
class _Edit:
    search: list[str]
    replace: list[str]


def _parse_edits(text: str) -> tuple[list[_Edit], str | None]:
    edits: list[_Edit] = []
    state, search, replace = None, [], []
    for line in text.split("\n"):
        if state is None:
            if _SEARCH.match(line):
                state, search, replace = "search", [], []
        elif state == "search":
            if _DIVIDER.match(line):
                state = "replace"
            elif _SEARCH.match(line) or _REPLACE.match(line):
                return (
                    edits,
                    "malformed edit: a SEARCH section must be followed by a line of ======= and then the REPLACE section",
                )
            else:
                search.append(line)
        elif state == "replace":
            if _REPLACE.match(line):
                edits.append(_Edit(_strip_fence_lines(search), _strip_fence_lines(replace)))
                state = None
            elif _SEARCH.match(line):
                return edits, "malformed edit: a REPLACE section must end with a line of >>>>>>> REPLACE"
            else:
                replace.append(line)
    if state is not None:
        return edits, "malformed edit: the last edit is not finished (it needs ======= and >>>>>>> REPLACE)"
    return edits, None


def _strip_fence_lines(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and lines[0].strip().startswith(("```", "~~~")):
        lines.pop(0)
    while lines and lines[-1].strip().startswith(("```", "~~~")):
        lines.pop()
    return lines


def _squash(line: str) -> str:
    return "".join(line.split())


def _apply_edit(block: str, edit: _Edit) -> str | None:
    lines = block.split("\n")
    search, replace = edit.search, edit.replace
    m = len(search)
    # 1. exact whole lines
    for k in range(len(lines) - m + 1):
        if lines[k : k + m] == search:
            return "\n".join(lines[:k] + replace + lines[k + m :])
    # 2. an exact substring (a part of a line, or lines that start or end mid-line)
    search_text = "\n".join(search)
    if search_text.strip() and search_text in block:
        return block.replace(search_text, "\n".join(replace), 1)
    # 3. line by line, ignoring whitespace and blank lines
    wanted = [(_squash(line), line) for line in search if line.strip()]
    if not wanted:
        return None
    for k in range(len(lines)):
        if _squash(lines[k]) != wanted[0][0]:
            continue
        j, w = k, 0
        while j < len(lines) and w < len(wanted):
            if not lines[j].strip():
                j += 1
                continue
            if _squash(lines[j]) != wanted[w][0]:
                break
            j += 1
            w += 1
        if w == len(wanted):
            return "\n".join(lines[:k] + _reindent(replace, wanted[0][1], lines[k]) + lines[j:])
    return None


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(replace: list[str], search_first: str, block_first: str) -> list[str]:
    have, want = _indent_of(search_first), _indent_of(block_first)
    if have == want:
        return replace
    if want.startswith(have):
        extra = want[len(have) :]
        return [extra + line if line.strip() else line for line in replace]
    if have.startswith(want):
        cut = have[len(want) :]
        return [line[len(cut) :] if line.startswith(cut) else line.lstrip() if line.strip() else line for line in replace]
    return replace


def _quote(lines: list[str], limit: int = 160) -> str:
    shown = "\n".join(line.rstrip() for line in lines if line.strip())[:limit]
    return repr(shown)


def _apply_edits(text: str, parent_block: str, language: CodeLanguage, component: Component | None) -> Extraction:
    edits, problem = _parse_edits(text)
    if problem:
        return Extraction(None, "edits", problem)
    if not edits:
        return Extraction(None, "edits", "the answer has a SEARCH marker but no complete SEARCH/REPLACE edit")
    if not parent_block.strip():
        return Extraction(None, "edits", "SEARCH/REPLACE edits need a parent block to apply to, and there is none")
    block = parent_block.replace("\r\n", "\n")
    failures = []
    for number, edit in enumerate(edits, 1):
        if not any(line.strip() for line in edit.search):
            failures.append(f"edit {number} has an empty SEARCH section (quote the lines of the block to replace)")
            continue
        changed = _apply_edit(block, edit)
        if changed is None:
            where = ""
            harness = component or _infer_component(parent_block, language)
            if harness is not None:
                head, _, tail = split_skeleton(harness.skeleton(language))
                squashed = _squash("\n".join(edit.search))
                if squashed and (squashed in _squash(head) or squashed in _squash(tail)):
                    where = " (it is in the fixed harness, which cannot change; only the block can)"
            failures.append(f"edit {number}: SEARCH text not found in the current block{where}: {_quote(edit.search)}")
            continue
        block = changed
    if failures:
        return Extraction(None, "edits", "; ".join(failures) + ". Copy the SEARCH lines exactly from the current block.")
    return Extraction(_tidy(block), "edits", None)


# ====================================================================================== extraction


def _tidy(block: str) -> str:
    lines = [line.rstrip() for line in block.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MARKER = re.compile(rf"^.*\b({EVOLVE_START}|{EVOLVE_END})\b.*$", re.MULTILINE)


def _between_markers(code: str) -> tuple[str, bool] | None:
    """(the code between the EVOLVE markers, whether there is real code outside them) or None."""
    markers = list(_MARKER.finditer(code))
    if not markers:
        return None
    starts = [m for m in markers if m.group(1) == EVOLVE_START]
    if starts:
        start = starts[0]
        ends = [m for m in markers if m.group(1) == EVOLVE_END and m.start() > start.start()]
        begin = start.end() + 1
        finish = ends[0].start() if ends else len(code)
        outside = code[: start.start()] + (code[ends[0].end() :] if ends else "")
    else:
        end = markers[0]
        begin, finish = 0, end.start()
        outside = code[end.end() :]
    return code[begin:finish], _has_code(outside)


def _has_code(text: str) -> bool:
    return bool(text.strip()) and any(
        line.strip() and not line.strip().startswith(("//", "/*", "*", ";;")) for line in text.split("\n")
    )


def _defines(code: str, language: CodeLanguage, required: tuple[str, ...]) -> bool:
    if not required:
        return bool(find_functions(code, language))
    defined = {f.name for f in find_functions(code, language)}
    return set(required) <= defined


def _strip_harness(code: str, language: CodeLanguage, component: Component, required: tuple[str, ...]) -> tuple[str, bool]:
    """Remove the top-level items that the harness already defines. Returns (code, removed any)."""
    harness = _harness_items(component, language)
    items = top_level_items(code, language)
    keep, removed = [], False
    for item in items:
        if item.name and item.name in harness:
            if item.kind == "fn" and (item.name in required or harness[item.name] == "decl"):
                keep.append(item)
                continue
            removed = True
            continue
        keep.append(item)
    if not removed:
        return code, False
    # Comments copied from the harness (its header, above the first kept item) go with the harness.
    head, _, tail = split_skeleton(component.skeleton(language))
    harness_text = _squash(head + tail)
    parts = []
    for item in keep:
        comments = [
            token.text
            for token in tokenize(code[item.start : item.code_start], language)
            if token.kind == "comment" and _squash(token.text) not in harness_text
        ]
        parts.append("\n".join(comments + [code[item.code_start : item.end]]))
    return "\n\n".join(parts), True


def _complete_from_parent(block: str, parent_block: str, language: CodeLanguage, required: tuple[str, ...]) -> str:
    """Prepend the parent's helper items (functions, types, statics, constants) that the answer uses but
    does not define: small models often write only the function they changed."""
    if not parent_block.strip() or language is CodeLanguage.WAT:
        return block
    parent_items = [
        item for item in top_level_items(parent_block, language) if item.name and item.kind not in ("use", "directive", "impl")
    ]
    block_items = top_level_items(block, language)
    defined = {item.name for item in block_items if item.name}
    wanted: set[str] = set()
    frontier = set().union(*(item.idents for item in block_items)) if block_items else set()
    while True:
        new = {
            item.name
            for item in parent_items
            if item.name in frontier and item.name not in defined and item.name not in wanted and item.name not in required
        }
        if not new:
            break
        wanted |= new
        frontier = set().union(*(item.idents for item in parent_items if item.name in new))
    if not wanted:
        return block
    chosen = [item for item in parent_items if item.name in wanted]
    helpers = [parent_block[item.start : item.end].strip("\n") for item in chosen]
    # A `use` of the parent that the helpers need (HashMap, ...) comes along when the answer lacks it.
    helper_idents = set().union(*(item.idents for item in chosen))
    block_uses = {item.name for item in block_items if item.kind == "use"}
    plumbing = {"use", "std", "core", "alloc", "self", "super", "crate", "collections"}
    needed_uses = [
        parent_block[u.start : u.end].strip("\n")
        for u in top_level_items(parent_block, language)
        if u.kind == "use" and u.name not in block_uses and (u.idents - plumbing) & helper_idents
    ]
    return "\n\n".join(needed_uses + helpers + [block.strip("\n")])


def _drop_main(code: str, language: CodeLanguage, parent_block: str) -> str:
    """Remove a `main` function (a usage example or test driver) unless the parent block has one: a
    block is a library function, and `main` would only add code (and `println!`) to the module."""
    if any(f.name == "main" for f in find_functions(parent_block, language)):
        return code
    mains = [f for f in find_functions(code, language) if f.name == "main"]
    for function in reversed(mains):
        code = code[: function.start] + code[function.end :]
    return code


def _pick_code(text: str, language: CodeLanguage, required: tuple[str, ...], parent_block: str) -> str | None:
    fences = [f for f in _fences(text) if f.code.strip()]
    if fences:
        tags = _LANGUAGE_TAGS.get(language, set())
        parent_form = normalize_source(parent_block, language) if parent_block.strip() else None

        def best(group: list[_Fence]) -> _Fence:
            fresh = [f for f in group if normalize_source(f.code, language) != parent_form]
            return (fresh or group)[-1]

        defining = [
            f for f in fences if _defines(_between_markers(f.code)[0] if _between_markers(f.code) else f.code, language, required)
        ]
        tagged = [f for f in defining if f.tag in tags]
        if tagged:
            return best(tagged).code
        if defining:
            return best(defining).code
        return max(fences, key=lambda f: len(f.code.strip())).code
    region = _code_region(text, language, required)
    if region is not None:
        return region
    if not required and _looks_like_code(text, language):
        return text
    return None


def _looks_like_code(text: str, language: CodeLanguage) -> bool:
    code_line = _CODE_LINE.get(language, _CODE_LINE[CodeLanguage.RUST])
    lines = [line for line in text.split("\n") if line.strip()]
    return bool(lines) and sum(bool(code_line.search(line)) for line in lines) >= 0.6 * len(lines)


def extract_candidate(
    text: str, parent_block: str, language: CodeLanguage | str, *, component: Component | None = None
) -> Extraction:
    """The candidate block in a model's answer (see the module docstring for every case handled).

    parent_block: the block the model was shown (SEARCH/REPLACE edits apply to it; its entry-point
    functions are what the answer must define; its helpers fill in what the answer leaves out); may be
    "" for free-form code. component: the component, for its harness and required functions; inferred
    from the parent block when not given."""
    language = _language(language)
    text = _THINK.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    parent_block = (parent_block or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return Extraction(None, "none", "the answer is empty")
    if component is None:
        component = _infer_component(parent_block, language)
    if component is not None and language in component.languages:
        required = required_functions(component, language)
    else:
        component = None
        required = tuple(_root_functions(parent_block, language)) if parent_block.strip() else ()
    if any(_SEARCH.match(line) for line in text.split("\n")):
        return _apply_edits(text, parent_block, language, component)
    code = _pick_code(text, language, required, parent_block)
    if code is None or not code.strip():
        wanted = f" defining {_describe(required)}" if required else ""
        return Extraction(
            None, "none", f"no {language.value} code{wanted} in the answer; reply with the block in one fenced code block"
        )
    kind = "block"
    between = _between_markers(code)
    if between is not None:
        code, outside = between
        kind = "program" if outside else "block"
    elif component is not None:
        code, stripped = _strip_harness(code, language, component, required)
        if stripped:
            kind = "program"
    if required and "main" not in required and language in (CodeLanguage.RUST, CodeLanguage.C):
        code = _drop_main(code, language, parent_block)
    block = _tidy(code)
    if not block:
        return Extraction(None, "none", "the answer's code block is empty")
    if required:
        block = _tidy(_complete_from_parent(block, parent_block, language, required))
        missing = [name for name in required if name not in {f.name for f in find_functions(block, language)}]
        if missing:
            return Extraction(
                None,
                "none",
                f"the answer does not define {_describe(tuple(missing))}; the block must define it with the same signature",
            )
    return Extraction(block, kind, None)


def _describe(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)
