"""The C lexer: clang's translation phases 1-2 and its tokenisation, for the policy and the tools alike.

Phases 1-2 (`LogicalText`): trigraphs when enabled, then line splices (a backslash, optional horizontal
space, a newline) are removed, and every line ending becomes one `\\n`; a map leads back to the offsets
the author wrote. Phase 3 (`CLexer.tokens`): comments, string and char literals, pp-numbers (which
swallow identifiers: `1asm` contains no `asm`), identifiers with `$`, UCNs and non-ASCII characters,
punctuators by maximal munch with digraphs, header names after include-like directives, and, as options,
raw string literals (read from the original text, as clang undoes phases 1-2 inside them) and C23 digit
separators. Whether trigraphs, raw strings and separators are on depends on the compiler's version and
flags, so the source policy lexes under each configuration; the tools use clang's defaults (all off).

The source policy (`toolchain/policy/c.py`) relies on this lexer agreeing with clang: a place where it
thinks "comment" or "string" and clang does not is a place to hide an `#include`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from .tokens import Token, match_end

__all__ = ["HEADER_DIRECTIVES", "CLexer", "LogicalText", "c_space", "lex_c"]

_TRIGRAPHS = {"=": "#", "/": "\\", "'": "^", "(": "[", ")": "]", "!": "|", "<": "{", ">": "}", "-": "~"}
# Phase 2 line splice as clang does it: backslash, optional horizontal space, then \n, \r, \r\n or \n\r.
_SPLICE = r"[ \t\f\v]*(?:\r\n|\n\r|\n|\r)"
_PHASES = {
    False: re.compile(r"\\" + _SPLICE),
    True: re.compile(r"(?:\\|\?\?/)" + _SPLICE + r"|\?\?([=/'()!<>\-])"),
}
# Directives after which clang lexes a header name (`<stdio.h>`) rather than ordinary tokens.
HEADER_DIRECTIVES = frozenset({"include", "include_next", "import", "__include_macros", "embed"})
_RAW_PREFIXES = frozenset({"R", "LR", "uR", "UR", "u8R"})
_PUNCT = re.compile(
    r"%:%:|\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[*/%+\-&^|]=|##|<:|:>|<%|%>|%:|::|.",
    re.DOTALL,
)
_DIGRAPHS = {"%:": "#", "%:%:": "##"}
_UCN = r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}"
_UCN_RE = re.compile(_UCN)
_IDENT = re.compile(rf"(?:[A-Za-z_$]|{_UCN}|[^\x00-\x7f])(?:[A-Za-z0-9_$]|{_UCN}|[^\x00-\x7f])*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"?')
_CHAR = re.compile(r"'(?:[^'\\\n]|\\[^\n])*'?")


def c_space(c: str) -> bool:
    """Horizontal whitespace as clang sees it: it skips NUL (with a warning) and Unicode spaces."""
    return c in " \t\f\v\0" or (c >= "\x80" and (c.isspace() or c == "\ufeff"))


def _ascii_identifier_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


class LogicalText:
    """The source after translation phases 1-2 (trigraphs if enabled, line splices), with a map back
    to original offsets so every finding points at the line the author wrote."""

    def __init__(self, source: str, trigraphs: bool) -> None:
        pieces: list[str] = []
        self.seg_log: list[int] = []  # logical start of each piece
        self.seg_orig: list[int] = []  # original start of each piece
        log = orig = 0

        def keep(text: str, at: int) -> None:
            nonlocal log
            if text:
                pieces.append(text)
                self.seg_log.append(log)
                self.seg_orig.append(at)
                log += len(text)

        for m in _PHASES[trigraphs].finditer(source):
            keep(source[orig : m.start()], orig)
            if m.lastindex:  # a trigraph other than a splicing ??/
                keep(_TRIGRAPHS[m.group(1)], m.start())
            orig = m.end()
        keep(source[orig:], orig)
        # clang ends lines at \r as well as \n; one newline character is all the lexer needs.
        self.source = source
        self.text = "".join(pieces).replace("\r", "\n")

    def to_orig(self, p: int) -> int:
        if not self.seg_log:
            return 0
        k = max(bisect.bisect_right(self.seg_log, p) - 1, 0)
        return self.seg_orig[k] + (p - self.seg_log[k])

    def to_logical(self, o: int) -> int:
        """The first logical position at or after original offset o."""
        k = bisect.bisect_right(self.seg_orig, o) - 1
        if k < 0:
            return 0
        p = self.seg_log[k] + (o - self.seg_orig[k])
        limit = self.seg_log[k + 1] if k + 1 < len(self.seg_log) else len(self.text)
        return min(p, limit)


class CLexer:
    """One lexing of a C source under one configuration; tokens are in logical offsets
    (`logical.to_orig` leads back). Kinds: ws, newline, comment, string, char, number, ident, punct
    (digraphs spelt as written), hash (a `#` or `%:` that starts a directive), header and eol (zero
    width, where a directive ends). headers=False lexes a header name as ordinary tokens."""

    def __init__(
        self,
        source: str,
        *,
        trigraphs: bool = False,
        raw_strings: bool = False,
        digit_separators: bool = False,
        headers: bool = True,
    ) -> None:
        self.logical = LogicalText(source, trigraphs)
        self.headers = headers
        self.text = self.logical.text
        self.raw_strings = raw_strings
        self.digit_separators = digit_separators

    def identifier_end(self, i: int) -> int:
        m = _IDENT.match(self.text, i)
        end = m.end() if m else i + 1
        # A run of "identifier" characters stops at Unicode whitespace.
        for k in range(i, end):
            if c_space(self.text[k]):
                return max(k, i + 1)
        return end

    def number_end(self, i: int) -> int:
        # A pp-number: digits, letters, `_`, `.`, signs after e/E/p/P and, with C23 digit separators,
        # `'` followed by an identifier character. It swallows identifiers: `1asm` contains no asm.
        t, n, p = self.text, len(self.text), i
        prev = ""
        while p < n:
            c = t[p]
            if (c.isascii() and (c.isalnum() or c in "_.")) or (c in "+-" and prev in ("e", "E", "p", "P")):
                prev, p = c, p + 1
            elif c == "'" and self.digit_separators and _ascii_identifier_char(t[p + 1 : p + 2]):
                prev, p = t[p + 1], p + 2
            elif c >= "\x80" and not c_space(c):
                prev, p = c, p + 1
            elif c == "\\" and _UCN_RE.match(t, p):
                p += 6 if t[p + 1] == "u" else 10
                prev = ""
            else:
                break
        return p

    def raw_string_end(self, quote: int) -> int | None:
        # Inside a raw string clang undoes phases 1-2, so the body is read from the original text.
        src, o = self.logical.source, self.logical.to_orig(quote) + 1
        delimiter = ""
        while len(delimiter) < 16 and o + len(delimiter) < len(src):
            c = src[o + len(delimiter)]
            if c in " ()\\" or not (c.isascii() and c.isprintable()):
                break
            delimiter += c
        if src[o + len(delimiter) : o + len(delimiter) + 1] != "(":
            return None  # invalid delimiter: a hard error in clang
        end = src.find(")" + delimiter + '"', o + len(delimiter) + 1)
        end = len(src) if end < 0 else end + len(delimiter) + 2
        return self.logical.to_logical(end)

    def header_end(self, p: int) -> int | None:
        """End of the header name at p (`<x>` or `"x"`, as clang lexes it after an include-like
        directive), or None: a computed include (a lone `<`, a macro) or nothing at all."""
        t, n = self.text, len(self.text)
        if p < n and t[p] == "<":
            q = p + 1
            while q < n and t[q] not in ">\n":
                q += 2 if t[q] == "\\" else 1
            return q + 1 if q < n and t[q] == ">" else None
        if p < n and t[p] == '"':
            return match_end(_STRING, t, p)
        return None

    def tokens(self) -> Iterator[Token]:
        t, n = self.text, len(self.text)
        i = 0
        line_start = True  # no token yet on this line; a comment spanning lines counts as a newline
        directive: int | None = None  # 0: a directive has begun, 1: its name came, 2: past its name
        header_wanted = False
        while i < n:
            c, start = t[i], i
            if c == "\n":
                # Only a real newline ends a directive: one inside a comment does not.
                if directive is not None:
                    yield Token("eol", i, i, "")
                line_start, directive, header_wanted = True, None, False
                i += 1
                yield Token("newline", start, i, c)
                continue
            if c_space(c):
                while i < n and c_space(t[i]):
                    i += 1
                yield Token("ws", start, i, t[start:i])
                continue
            if t.startswith("//", i):
                end = t.find("\n", i)
                i = n if end < 0 else end
                yield Token("comment", start, i, t[start:i])
                continue
            if t.startswith("/*", i):
                end = t.find("*/", i + 2)
                i = n if end < 0 else end + 2
                line_start = line_start or "\n" in t[start:i]
                yield Token("comment", start, i, t[start:i])
                continue
            at_line_start, line_start = line_start, False
            if header_wanted:
                header_wanted = False
                header_end = self.header_end(i)
                if header_end is not None:
                    i = header_end
                    yield Token("header", start, i, t[start:i])
                    continue
            kind = self.token_kind(i)
            i = self.token_end(i, kind)
            text = t[start:i]
            if kind == "punct" and _DIGRAPHS.get(text, text) == "#" and at_line_start:
                kind, directive = "hash", 0
            elif directive == 0:
                directive = 1
                header_wanted = self.headers and kind == "ident" and text in HEADER_DIRECTIVES
            yield Token(kind, start, i, text)
        if directive is not None:
            yield Token("eol", n, n, "")

    def token_kind(self, i: int) -> str:
        t, c = self.text, self.text[i]
        if c == '"':
            return "string"
        if c == "'":
            return "char"
        if (c.isascii() and c.isdigit()) or (c == "." and t[i + 1 : i + 2].isdigit() and t[i + 1].isascii()):
            return "number"
        if (c.isascii() and (c.isalpha() or c in "_$")) or c >= "\x80" or (c == "\\" and _UCN_RE.match(t, i)):
            end = self.identifier_end(i)
            if self.raw_strings and t[i:end] in _RAW_PREFIXES and t[end : end + 1] == '"':
                if self.raw_string_end(end) is not None:
                    return "string"
            return "ident"
        return "punct"

    def token_end(self, i: int, kind: str) -> int:
        t = self.text
        if kind == "string" and t[i] != '"':  # a raw string: prefix, quote, body
            end = self.raw_string_end(self.identifier_end(i))
            assert end is not None  # token_kind said "string" only when the raw string is valid
            return end
        if kind == "string":
            return match_end(_STRING, t, i)
        if kind == "char":
            return match_end(_CHAR, t, i)
        if kind == "number":
            return self.number_end(i)
        if kind == "ident":
            return self.identifier_end(i)
        return match_end(_PUNCT, t, i)


def lex_c(source: str) -> list[Token]:
    """Every character of `source` in exactly one token, under clang's defaults (no trigraphs, raw
    strings or digit separators), in original offsets. Line splices and newlines go to ws tokens;
    a directive's `#` is punct and its end an eol token; a header name is lexed as ordinary tokens
    (`<`, `stdint`, `.`, `h`, `>`), which keeps the normal form of a block what it has always been."""
    lexer = CLexer(source, headers=False)
    to_orig = lexer.logical.to_orig
    out: list[Token] = []
    cursor = 0

    def space_to(end: int) -> None:
        nonlocal cursor
        if end > cursor:
            if out and out[-1].kind == "ws":
                out[-1] = Token("ws", out[-1].start, end, source[out[-1].start : end])
            else:
                out.append(Token("ws", cursor, end, source[cursor:end]))
            cursor = end

    for token in lexer.tokens():
        start = to_orig(token.start)
        end = start if token.start == token.end else to_orig(token.end - 1) + 1
        if token.kind in ("ws", "newline"):
            space_to(end)
            continue
        space_to(start)
        kind = "punct" if token.kind == "hash" else token.kind
        out.append(Token(kind, start, end, source[start:end]))
        cursor = max(cursor, end)
    space_to(len(source))
    return out
