"""The Rust lexer: a transcription of rustc_lexer's rules for where comments, literals, identifiers
and lifetimes begin and end.

One lexer serves both readers of Rust code. The source policy (`toolchain/policy/rust.py`) needs it to
agree with rustc exactly, because any place where a scanner thinks "this is a comment or a string" and
the compiler disagrees is a place to hide an attack; the item splitter, the tuner and source identity
need the same boundaries for nothing to be mistaken for code. So the rules below follow rustc: nested
block comments, raw strings with any number of hashes, literal suffixes, `'a'` against `'a`, raw
identifiers, Unicode Pattern_White_Space, a first-line shebang. Like rustc_lexer it yields one token per
punctuation character; `tokens.glue` joins operators for the readers that want them.
"""

from __future__ import annotations

import re

from .tokens import Token, match_end

__all__ = ["RUST_WHITESPACE", "id_continue", "id_start", "lex_rust"]

# rustc's whitespace is Unicode Pattern_White_Space, not Python's str.isspace(); a left-to-right mark
# between `std` and `::` must be skipped here exactly as rustc skips it.
RUST_WHITESPACE = frozenset("\t\n\v\f\r \x85\u200e\u200f\u2028\u2029")
_DEC_DIGITS = frozenset("0123456789")  # sets, not strings: "" (end of input) is in every string
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def id_start(c: str) -> bool:
    if c < "\x80":
        return c == "_" or c.isalpha()
    return c.isidentifier()


def id_continue(c: str) -> bool:
    if c < "\x80":
        return c == "_" or c.isalnum()
    return ("a" + c).isidentifier()


def _digit(c: str) -> bool:
    return c.isdigit() and c.isascii()


class _RustLexer:
    _DQ_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
    _BLOCK = re.compile(r"/\*|\*/")

    def __init__(self, src: str) -> None:
        self.src = src
        self.n = len(src)
        self.out: list[Token] = []

    def at(self, i: int) -> str:
        return self.src[i] if 0 <= i < self.n else ""

    def add(self, kind: str, start: int, end: int) -> int:
        self.out.append(Token(kind, start, end, self.src[start:end]))
        return end

    def eat_ident(self, i: int) -> int:
        while i < self.n and id_continue(self.src[i]):
            i += 1
        return i

    def eat_suffix(self, i: int) -> int:
        # A literal's suffix (`1u8`, `"x"suffix`) belongs to the literal token.
        return self.eat_ident(i + 1) if id_start(self.at(i)) else i

    def literal_end(self, found: tuple[int, bool]) -> int:
        end, ok = found
        return self.eat_suffix(end) if ok else end

    def whitespace_end(self, i: int) -> int:
        while i < self.n and self.src[i] in RUST_WHITESPACE:
            i += 1
        return i

    def line_comment_end(self, i: int) -> int:
        j = self.src.find("\n", i)
        return self.n if j < 0 else j

    def block_comment_end(self, i: int) -> int:
        # Rust block comments nest: /* /* */ */ is one comment.
        depth, p = 1, i + 2
        while depth:
            m = self._BLOCK.search(self.src, p)
            if m is None:
                return self.n
            depth += 1 if m.group() == "/*" else -1
            p = m.end()
        return p

    def double_quoted(self, p: int) -> tuple[int, bool]:
        end = match_end(self._DQ_BODY, self.src, p)
        if end < self.n:
            return end + 1, True
        return self.n, False

    def single_quoted(self, p: int) -> tuple[int, bool]:
        if self.at(p + 1) == "'" and self.at(p) != "\\":
            return p + 2, True
        while True:
            c = self.at(p)
            if c == "'":
                return p + 1, True
            if c in ("/", ""):
                return p, False
            if c == "\n" and self.at(p + 1) != "'":
                return p, False
            p += 2 if c == "\\" else 1

    def raw_string(self, p: int) -> tuple[int, bool]:
        # p is just after the r / br / cr prefix: hashes, a quote, then up to `"` + the same hashes.
        hashes = 0
        while self.at(p) == "#":
            hashes += 1
            p += 1
        if self.at(p) != '"':
            return p, False
        p += 1
        while True:
            q = self.src.find('"', p)
            if q < 0:
                return self.n, False
            p = q + 1
            closing = 0
            while closing < hashes and self.at(p) == "#":
                closing += 1
                p += 1
            if closing == hashes:
                return p, True

    def decimal(self, p: int) -> int:
        while self.at(p) == "_" or _digit(self.at(p)):
            p += 1
        return p

    def exponent(self, p: int) -> int:
        if self.at(p) in ("-", "+"):
            p += 1
        return self.decimal(p)

    def number(self, i: int) -> int:
        p = i + 1
        if self.src[i] == "0":
            f = self.at(p)
            if f in ("b", "o", "x"):
                p += 1
                seen = False
                digits = _HEX_DIGITS if f == "x" else _DEC_DIGITS
                while self.at(p) == "_" or self.at(p) in digits:
                    seen = seen or self.at(p) != "_"
                    p += 1
                if not seen:
                    return self.eat_suffix(p)
            elif f == "_" or _digit(f):
                p = self.decimal(p)
            elif f not in (".", "e", "E"):
                return self.eat_suffix(p)
        else:
            p = self.decimal(p)
        f = self.at(p)
        if f == "." and self.at(p + 1) != "." and not id_start(self.at(p + 1)):
            p += 1
            if _digit(self.at(p)):
                p = self.decimal(p)
                if self.at(p) in ("e", "E"):
                    p = self.exponent(p + 1)
        elif f in ("e", "E"):
            p = self.exponent(p + 1)
        return self.eat_suffix(p)

    def quote(self, i: int) -> tuple[str, int]:
        # 'a' is a char, 'a a lifetime, '"' a char: rustc decides by the second character after the quote.
        f, s = self.at(i + 1), self.at(i + 2)
        if s == "'" or not (id_start(f) or _digit(f)):
            return "char", self.literal_end(self.single_quoted(i + 1))
        if f == "r" and s == "#" and id_start(self.at(i + 3)):
            return "lifetime", self.eat_ident(i + 4)
        p = self.eat_ident(i + 2)
        if self.at(p) == "'":
            return "char", p + 1
        return "lifetime", p

    def is_line_comment(self, p: int) -> bool:
        """A `//` comment that is not a doc comment (`//!`, `///` but not `////`)."""
        return self.src.startswith("//", p) and not (
            self.src.startswith("//!", p) or (self.src.startswith("///", p) and self.at(p + 3) != "/")
        )

    def is_block_comment(self, p: int) -> bool:
        """A `/*` comment that is not a doc comment (`/*!`, `/**` but not `/***` or `/**/`)."""
        return self.src.startswith("/*", p) and not (
            self.at(p + 2) == "!" or (self.at(p + 2) == "*" and self.at(p + 3) not in ("*", "/"))
        )

    def shebang_end(self, i: int) -> int | None:
        # rustc ignores a first line starting with `#!` unless the next real token is `[` (then it is
        # an inner attribute). Skipping the line here as rustc does matters: a quote on it must not
        # open a string that hides the lines below.
        p = i + 2
        while p < self.n:
            if self.src[p] in RUST_WHITESPACE:
                p += 1
            elif self.is_line_comment(p):
                p = self.line_comment_end(p)
            elif self.is_block_comment(p):
                p = self.block_comment_end(p)
            else:
                break
        if self.at(p) == "[":
            return None
        return self.line_comment_end(i)

    def string_like(self, i: int) -> int | None:
        """End of a string, byte string, C string, raw string or byte char starting at i, or None."""
        c, c1 = self.src[i], self.at(i + 1)
        if c == '"':
            return self.literal_end(self.double_quoted(i + 1))
        if c == "r" and c1 in ("#", '"'):
            return self.literal_end(self.raw_string(i + 1))
        if c not in ("b", "c"):
            return None
        if c1 == '"':
            return self.literal_end(self.double_quoted(i + 2))
        if c1 == "r" and self.at(i + 2) in ("#", '"'):
            return self.literal_end(self.raw_string(i + 2))
        return None

    def run(self) -> list[Token]:
        src, n = self.src, self.n
        i = self.add("ws", 0, 1) if src.startswith("\ufeff") else 0
        if src.startswith("#!", i) and (end := self.shebang_end(i)) is not None:
            i = self.add("comment", i, end)
        while i < n:
            c, c1 = src[i], self.at(i + 1)
            if c in RUST_WHITESPACE:
                i = self.add("ws", i, self.whitespace_end(i))
            elif c == "/" and c1 == "/":
                i = self.add("comment", i, self.line_comment_end(i))
            elif c == "/" and c1 == "*":
                i = self.add("comment", i, self.block_comment_end(i))
            elif c == "r" and c1 == "#" and id_start(self.at(i + 2)):
                i = self.add("ident", i, self.eat_ident(i + 2))  # a raw identifier, r#name
            elif c == "b" and c1 == "'":
                i = self.add("char", i, self.literal_end(self.single_quoted(i + 2)))
            elif (end := self.string_like(i)) is not None:
                i = self.add("string", i, end)
            elif id_start(c):
                i = self.add("ident", i, self.eat_ident(i + 1))
            elif _digit(c):
                i = self.add("number", i, self.number(i))
            elif c == "'":
                kind, end = self.quote(i)
                i = self.add(kind, i, end)
            else:
                i = self.add("punct" if c.isascii() else "unknown", i, i + 1)
        return self.out


def lex_rust(source: str) -> list[Token]:
    """Every character of `source` in exactly one token, split where rustc splits it. Kinds: ws,
    comment (a shebang line too), string, char, lifetime, ident (`r#x` included), number, punct (one
    character each) and unknown (a non-ASCII character rustc rejects)."""
    return _RustLexer(source).run()
