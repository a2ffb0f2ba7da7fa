"""Source policy: refuse candidate programs that would reach the host while they are compiled.

Threat model. Candidates are untrusted, LLM-written Rust or C. The compiler runs on our machine, in a
fresh directory, with an empty environment and resource limits (see `isolate.py`), and the wasm module
it produces runs sandboxed. What is left is what the *compiler itself* does on the candidate's behalf,
before any sandbox applies, and what the program asks of its host:

- read host files into the program (`include_str!`, `#[path]`, `mod x;`, `#[debugger_visualizer]`,
  C `#include "..."`, `#embed`) and so leak them into a binary we publish or run;
- bake the build environment into the binary (`env!`, `option_env!`), or the build time (C `__DATE__`,
  `__TIME__`, `__TIMESTAMP__`), which would also break reproducibility: every voter rebuilds the source
  and must get the same SHA-256;
- declare host imports (`extern` blocks, `#[link]`, C `import_module`), hide code from review
  (inline assembly), or change the language (`#![feature]`, proc macros, outside crates);
- use OS facilities through std (`std::fs`, `std::net`, `std::process`, `std::thread`, `std::env`).

The policy runs before any compiler and reports every violation with its rule and line, so a rejected
candidate can be repaired. It is a lexical scan, not a compiler: where it cannot tell what code means it
errs toward rejecting. The lexers therefore mirror rustc's and clang's own tokenisation (comments,
nested comments, raw strings, lifetimes, line splices, trigraphs), because any place where the scanner
thinks "this is a comment or a string" and the compiler disagrees is a place to hide an attack.

Macros deserve a word. A macro can reassemble tokens: `m!(include_str)` with `$x!("/etc/passwd")` in its
body calls include_str!, and `($a:tt $b:tt $c:tt) => { $a $b; }` turns `mod x { }` into `mod x;`. The only
thing a macro cannot do (on stable Rust, without `##` in C) is invent an identifier. So inside macro
invocations and macro_rules bodies, the policy bans the dangerous *names* and keywords themselves,
however they are arranged.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["C_ALLOWED_HEADERS", "Violation", "check_c", "check_rust"]


@dataclass(frozen=True)
class Violation:
    """One breach of the source policy."""

    rule: str  # short stable id, e.g. "include-macro"
    line: int  # 1-based line in the original source
    message: str  # what was found and why it is banned

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {self.message}"


# Freestanding headers that only declare types and constants: no functions, so nothing to import.
# The toolchain also compiles with -nostdinc, so these come from the compiler's resource directory.
C_ALLOWED_HEADERS: frozenset[str] = frozenset({"stdint.h", "stddef.h", "stdbool.h", "float.h", "limits.h"})


def _line_starts(source: str, newline: re.Pattern[str]) -> list[int]:
    return [0] + [m.end() for m in newline.finditer(source)]


class _Report:
    """Violations found so far, one per (place, rule): a token can break two rules but not one twice."""

    def __init__(self, source: str, newline: re.Pattern[str]) -> None:
        self._starts = _line_starts(source, newline)
        self._found: dict[tuple[int, str], tuple[int, str]] = {}

    def add(self, offset: int, rule: str, message: str) -> None:
        self._found.setdefault((offset, rule), (offset, message))

    def violations(self) -> list[Violation]:
        ordered = sorted(self._found.items(), key=lambda item: (item[1][0], item[0][1]))
        return [
            Violation(rule, bisect.bisect_right(self._starts, offset), message)
            for (_, rule), (offset, message) in ordered
        ]


# ============================================================================================ Rust

# rustc's whitespace is Unicode Pattern_White_Space, not Python's str.isspace(); a left-to-right mark
# between `std` and `::` must be skipped here exactly as rustc skips it.
_RUST_WS = frozenset("\t\n\v\f\r \x85\u200e\u200f\u2028\u2029")

# Keywords (strict and reserved) never name a macro: `if !(x)` and `return !(x)` are not invocations.
_RUST_KEYWORDS = frozenset({
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl",
    "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual",
    "yield", "try", "gen",
})  # fmt: skip

# Built-in macros that reach outside the program: name -> (rule, why it is banned).
_READS_FILE = "reads a host file at compile time; candidates must be self-contained"
_READS_ENV = "bakes a build-environment variable into the binary; candidates must not read the host environment"
_RAW_CODE = "embeds raw machine code the policy cannot inspect; write plain Rust"
_RUST_MACROS = {
    "include": ("include-macro", _READS_FILE),
    "include_str": ("include-macro", _READS_FILE),
    "include_bytes": ("include-macro", _READS_FILE),
    "env": ("env-macro", _READS_ENV),
    "option_env": ("env-macro", _READS_ENV),
    "asm": ("inline-asm", _RAW_CODE),
    "global_asm": ("inline-asm", _RAW_CODE),
    "naked_asm": ("inline-asm", _RAW_CODE),
    "llvm_asm": ("inline-asm", _RAW_CODE),
}

# Attributes: name -> (rule, message). Matched by name wherever an attribute can be: `#[..]`, `#![..]`,
# inside `cfg_attr(pred, ..)` and inside Rust 2024's `unsafe(..)`.
_NO_IMPORTS = "candidates may not import anything"
_PROC_MACRO = "defines a procedural macro, which runs arbitrary code inside the compiler"
_RUST_ATTRIBUTES = {
    "path": (
        "path-attribute",
        "#[path] points a module at an arbitrary host file; candidates must be one self-contained file",
    ),
    "debugger_visualizer": (
        "path-attribute",
        "#[debugger_visualizer] reads a host file at compile time and embeds it in the binary",
    ),
    "link": ("link-attribute", f"#[link] links host libraries or names a wasm import module; {_NO_IMPORTS}"),
    "link_name": ("link-attribute", f"#[link_name] names a host import; {_NO_IMPORTS}"),
    "wasm_import_module": ("link-attribute", f"#[wasm_import_module] names a host import module; {_NO_IMPORTS}"),
    "link_ordinal": ("link-attribute", f"#[link_ordinal] names a host import; {_NO_IMPORTS}"),
    "link_section": (
        "link-attribute",
        "#[link_section] places data in a chosen linker/custom section; candidates may not steer linking",
    ),
    "feature": (
        "feature-gate",
        "#![feature] enables unstable compiler features; candidates must compile on stable Rust",
    ),
    "proc_macro": ("proc-macro", f"#[proc_macro] {_PROC_MACRO}"),
    "proc_macro_derive": ("proc-macro", f"#[proc_macro_derive] {_PROC_MACRO}"),
    "proc_macro_attribute": ("proc-macro", f"#[proc_macro_attribute] {_PROC_MACRO}"),
}
# Attribute names that stay dangerous even if a macro assembles the `#[..]` around them. The others
# only act on things banned in macros anyway (`path` needs `mod x;`, `link` needs an extern block,
# `feature` must sit at the crate root where no macro expands), and `path`/`link` are common words.
_RUST_MACRO_ATTRIBUTE_WORDS = frozenset(
    {"debugger_visualizer", "link_section", "proc_macro", "proc_macro_derive", "proc_macro_attribute"}
)

# std modules that reach the OS. `core` and `alloc` have none of them.
_STD_OS_MODULES = frozenset({"fs", "net", "process", "thread", "env"})
_STD_OS_REASON = (
    "gives access to OS facilities (files, network, processes, threads, environment) that candidates must not use"
)

_ALLOWED_CRATES = frozenset({"core", "alloc", "std"})

# std macros whose arguments are parsed as expressions, patterns or format strings: they cannot splice
# tokens into paths or items, so their arguments are checked as ordinary code. Exempt only while the
# candidate does not define or import a macro of the same name.
_STD_EXPRESSION_MACROS = frozenset({
    "assert", "assert_eq", "assert_ne", "debug_assert", "debug_assert_eq", "debug_assert_ne", "vec", "format",
    "format_args", "print", "println", "eprint", "eprintln", "write", "writeln", "panic", "unreachable", "todo",
    "unimplemented", "matches", "dbg", "concat", "stringify", "cfg", "compile_error", "line", "column", "file",
    "module_path",
})  # fmt: skip

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_DEC_DIGITS = frozenset("0123456789")  # sets, not strings: "" (end of input) is in every string
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class _Tok:
    __slots__ = ("kind", "pos", "raw", "text")

    def __init__(self, kind: str, text: str, pos: int, raw: bool = False) -> None:
        self.kind = kind  # ident, lifetime, str, char, num, punct, unknown
        self.text = text  # identifiers NFC-normalised as rustc does, without any r# prefix
        self.pos = pos  # offset of the first character in the original source
        self.raw = raw  # r#ident: never a keyword

    def is_(self, text: str) -> bool:
        return self.kind == "punct" and self.text == text

    def is_any(self, texts: Iterable[str]) -> bool:
        return self.kind == "punct" and self.text in texts

    def keyword(self, text: str) -> bool:
        return self.kind == "ident" and not self.raw and self.text == text


_EOF = _Tok("eof", "", -1)


def _id_start(c: str) -> bool:
    if c < "\x80":
        return c == "_" or c.isalpha()
    return c.isidentifier()


def _id_continue(c: str) -> bool:
    if c < "\x80":
        return c == "_" or c.isalnum()
    return ("a" + c).isidentifier()


class _RustLexer:
    """A transcription of rustc_lexer's rules for everything that decides where comments, literals
    and identifiers begin and end."""

    _DQ_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
    _BLOCK = re.compile(r"/\*|\*/")

    def __init__(self, src: str) -> None:
        self.src = src
        self.n = len(src)

    def at(self, i: int) -> str:
        return self.src[i] if 0 <= i < self.n else ""

    def eat_ident(self, i: int) -> int:
        while i < self.n and _id_continue(self.src[i]):
            i += 1
        return i

    def eat_suffix(self, i: int) -> int:
        # A literal's suffix (`1u8`, `"x"suffix`) belongs to the literal token.
        return self.eat_ident(i + 1) if _id_start(self.at(i)) else i

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
        end = self._DQ_BODY.match(self.src, p).end()
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

    def number(self, i: int) -> int:
        def decimal(p: int) -> tuple[int, bool]:
            seen = False
            while self.at(p) == "_" or self.at(p).isdigit() and self.at(p).isascii():
                seen = seen or self.at(p) != "_"
                p += 1
            return p, seen

        def exponent(p: int) -> int:
            if self.at(p) in ("-", "+"):
                p += 1
            return decimal(p)[0]

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
            elif f == "_" or (f.isdigit() and f.isascii()):
                p = decimal(p)[0]
            elif f not in (".", "e", "E"):
                return self.eat_suffix(p)
        else:
            p = decimal(p)[0]
        f = self.at(p)
        if f == "." and self.at(p + 1) != "." and not _id_start(self.at(p + 1)):
            p += 1
            if self.at(p).isdigit() and self.at(p).isascii():
                p = decimal(p)[0]
                if self.at(p) in ("e", "E"):
                    p = exponent(p + 1)
        elif f in ("e", "E"):
            p = exponent(p + 1)
        return self.eat_suffix(p)

    def quote(self, i: int) -> tuple[str, int]:
        # 'a' is a char, 'a a lifetime, '"' a char: rustc decides by the second character after the quote.
        f, s = self.at(i + 1), self.at(i + 2)
        if s == "'" or not (_id_start(f) or (f.isdigit() and f.isascii())):
            end, ok = self.single_quoted(i + 1)
            return "char", self.eat_suffix(end) if ok else end
        if f == "r" and s == "#" and _id_start(self.at(i + 3)):
            return "lifetime", self.eat_ident(i + 4)
        p = self.eat_ident(i + 2)
        if self.at(p) == "'":
            return "char", p + 1
        return "lifetime", p

    def shebang_end(self, i: int) -> int | None:
        # rustc ignores a first line starting with `#!` unless the next real token is `[` (then it is
        # an inner attribute). Skipping the line here as rustc does matters: a quote on it must not
        # open a string that hides the lines below.
        p = i + 2
        while p < self.n:
            c = self.src[p]
            if c in _RUST_WS:
                p += 1
            elif self.src.startswith("//", p) and not (
                self.src.startswith("//!", p) or (self.src.startswith("///", p) and self.at(p + 3) != "/")
            ):
                p = self.line_comment_end(p)
            elif self.src.startswith("/*", p) and not (
                self.at(p + 2) == "!" or (self.at(p + 2) == "*" and self.at(p + 3) not in ("*", "/"))
            ):
                p = self.block_comment_end(p)
            else:
                break
        if self.at(p) == "[":
            return None
        return self.line_comment_end(i)

    def tokens(self) -> list[_Tok]:
        src, n = self.src, self.n
        i = 1 if src.startswith("\ufeff") else 0
        if src.startswith("#!", i):
            i = self.shebang_end(i) or i
        out: list[_Tok] = []
        while i < n:
            c = src[i]
            if c in _RUST_WS:
                i += 1
                continue
            if c == "/" and self.at(i + 1) == "/":
                i = self.line_comment_end(i)
                continue
            if c == "/" and self.at(i + 1) == "*":
                i = self.block_comment_end(i)
                continue
            start = i
            c1 = self.at(i + 1)
            if c == "r" and c1 == "#" and _id_start(self.at(i + 2)):
                i = self.eat_ident(i + 2)
                out.append(_Tok("ident", unicodedata.normalize("NFC", src[start + 2 : i]), start, raw=True))
                continue
            if c == "r" and c1 in ("#", '"'):
                end, ok = self.raw_string(i + 1)
                i = self.eat_suffix(end) if ok else end
                out.append(_Tok("str", src[start:i], start))
                continue
            if c in ("b", "c"):
                if c == "b" and c1 == "'":
                    end, ok = self.single_quoted(i + 2)
                    i = self.eat_suffix(end) if ok else end
                    out.append(_Tok("char", src[start:i], start))
                    continue
                if c1 == '"':
                    end, ok = self.double_quoted(i + 2)
                    i = self.eat_suffix(end) if ok else end
                    out.append(_Tok("str", src[start:i], start))
                    continue
                if c1 == "r" and self.at(i + 2) in ("#", '"'):
                    end, ok = self.raw_string(i + 2)
                    i = self.eat_suffix(end) if ok else end
                    out.append(_Tok("str", src[start:i], start))
                    continue
            if _id_start(c):
                i = self.eat_ident(i + 1)
                out.append(_Tok("ident", unicodedata.normalize("NFC", src[start:i]), start))
            elif c.isdigit() and c.isascii():
                i = self.number(i)
                out.append(_Tok("num", src[start:i], start))
            elif c == "'":
                kind, i = self.quote(i)
                out.append(_Tok(kind, src[start:i], start))
            elif c == '"':
                end, ok = self.double_quoted(i + 1)
                i = self.eat_suffix(end) if ok else end
                out.append(_Tok("str", src[start:i], start))
            elif src.startswith("::", i) or src.startswith("!=", i):
                # Glued as rustc's parser glues them: `a::b` is a path, `env != x` is no macro call.
                out.append(_Tok("punct", src[i : i + 2], start))
                i += 2
            else:
                out.append(_Tok("punct" if c.isascii() else "unknown", c, start))
                i += 1
        return out


def _match_brackets(toks: list[_Tok]) -> dict[int, int]:
    """Opener index -> closer index. An unclosed group runs to the end (rustc rejects it anyway)."""
    close: dict[int, int] = {}
    stack: list[int] = []
    for i, t in enumerate(toks):
        if t.kind != "punct":
            continue
        if t.text in _OPENERS:
            stack.append(i)
        elif t.text in (")", "]", "}"):
            for depth in range(len(stack) - 1, -1, -1):
                if _OPENERS[toks[stack[depth]].text] == t.text:
                    for opener in stack[depth:]:
                        close[opener] = i
                    del stack[depth:]
                    break
    for opener in stack:
        close[opener] = len(toks)
    return close


class _UseLeaf:
    __slots__ = ("at", "bound", "glob", "segments")

    def __init__(self, segments: list[tuple[str, int]], glob: bool, bound: str | None, at: int) -> None:
        self.segments = segments  # (name, token index); metavariables as "$name"
        self.glob = glob
        self.bound = bound  # the name the leaf introduces (None for globs)
        self.at = at  # token index of the leaf


class _RustScan:
    def __init__(self, source: str) -> None:
        self.toks = _RustLexer(source).tokens()
        self.close = _match_brackets(self.toks)
        self.report = _Report(source, re.compile(r"\n"))

    def tok(self, i: int) -> _Tok:
        return self.toks[i] if 0 <= i < len(self.toks) else _EOF

    def flag(self, i: int, rule: str, message: str) -> None:
        self.report.add(self.toks[i].pos, rule, message)

    # ---------------------------------------------------------------- structure

    def item_end(self, i: int) -> int:
        """Index of the `;` ending the item that starts at i, or of the enclosing group's closer."""
        while i < len(self.toks):
            t = self.toks[i]
            if t.is_(";") or (t.kind == "punct" and t.text in (")", "]", "}")):
                return i
            i = self.skip(i)
        return i

    def skip(self, i: int) -> int:
        """The index after the token at i, or after its whole group if it opens one."""
        t = self.toks[i]
        return self.close[i] + 1 if t.is_any(_OPENERS) else i + 1

    def use_tree(self, pos: int, end: int, prefix: list[tuple[str, int]], leaves: list[_UseLeaf]) -> int:
        segments = list(prefix)
        if self.tok(pos).is_("::") and pos < end:
            pos += 1
        while pos < end:
            t = self.toks[pos]
            if t.is_("*"):
                leaves.append(_UseLeaf(segments, True, None, pos))
                return pos + 1
            if t.is_("{"):
                stop = min(self.close[pos], end)
                p = pos + 1
                while p < stop:
                    p = self.use_tree(p, stop, segments, leaves)
                    while p < stop and not self.toks[p].is_(","):
                        p = self.skip(p)
                    p += 1
                return stop + 1
            if t.kind == "ident":
                segment, pos = (t.text, pos), pos + 1
            elif t.is_("$") and self.tok(pos + 1).kind == "ident":
                segment, pos = ("$" + self.toks[pos + 1].text, pos), pos + 2
            else:
                return pos + 1
            segments = segments + [segment]
            if pos < end and self.toks[pos].is_("::"):
                pos += 1
                continue
            named = [s for s in segments if s[0] != "self"] if segment[0] == "self" else segments
            bound = named[-1][0] if named and segment[0] == "self" else segment[0]
            if self.tok(pos).keyword("as") and self.tok(pos + 1).kind == "ident" and pos + 1 < end:
                bound, pos = self.toks[pos + 1].text, pos + 2
            leaves.append(_UseLeaf(segments, False, bound, segment[1]))
            return pos
        return pos

    def macro_regions(self, dynamic_names: bool) -> tuple[list[int], list[int]]:
        """Per-token depth inside macro invocations (call) and macro_rules definitions (def).

        dynamic_names: some `use` item is built by a macro, so it may import a macro under any name.
        """
        n = len(self.toks)
        call, define = [0] * (n + 1), [0] * (n + 1)
        names: set[str] = set()
        calls: list[tuple[str, int]] = []
        for i, t in enumerate(self.toks):
            if t.kind != "ident" or not self.tok(i + 1).is_("!"):
                continue
            if t.text == "macro_rules":
                name = self.tok(i + 2)
                if name.is_("$"):
                    dynamic_names = True  # a macro that defines macros named by its caller
                    body = i + 4
                else:
                    names.add(name.text)
                    body = i + 3
                if self.tok(body).is_any(_OPENERS):
                    define[body + 1] += 1
                    define[self.close[body]] -= 1
            elif (t.raw or t.text not in _RUST_KEYWORDS) and self.tok(i + 2).is_any(_OPENERS):
                calls.append((t.text, i + 2))
        # A std macro name stops being trusted once the candidate defines or imports its own.
        for i, t in enumerate(self.toks):
            if t.keyword("as") and self.tok(i + 1).kind == "ident":
                names.add(self.tok(i + 1).text)
        for name, opener in calls:
            if name in _STD_EXPRESSION_MACROS and name not in names and not dynamic_names:
                continue
            call[opener + 1] += 1
            call[self.close[opener]] -= 1
        for depths in (call, define):
            for i in range(1, n + 1):
                depths[i] += depths[i - 1]
        return call, define

    # ---------------------------------------------------------------- rules

    def check_attribute(self, lo: int, hi: int) -> None:
        k = lo
        if self.tok(k).is_("::"):
            k += 1
        segments: list[int] = []
        while k < hi and self.toks[k].kind == "ident":
            segments.append(k)
            k += 1
            if k < hi and self.toks[k].is_("::"):
                k += 1
            else:
                break
        if not segments:
            return
        name = self.toks[segments[-1]].text
        has_args = k < hi and self.toks[k].is_("(")
        if name == "cfg_attr" and has_args:
            # cfg_attr(predicate, attr, attr...): the predicate is skipped, every attr checked.
            parts, start, p, stop = [], k + 1, k + 1, self.close[k]
            while p < stop:
                if self.toks[p].is_(","):
                    parts.append((start, p))
                    start = p + 1
                p = self.skip(p)
            parts.append((start, stop))
            for a, b in parts[1:]:
                self.check_attribute(a, b)
        elif name == "unsafe" and has_args:
            self.check_attribute(k + 1, self.close[k])
        else:
            for s in segments:
                if self.toks[s].text in _RUST_ATTRIBUTES:
                    self.flag(s, *_RUST_ATTRIBUTES[self.toks[s].text])

    def run(self) -> list[Violation]:
        in_use, leaves, dynamic_names = self.collect_uses()
        call, define = self.macro_regions(dynamic_names)
        aliases = self.std_aliases(leaves)
        std_flagged = self.check_uses(leaves, aliases)
        for i, t in enumerate(self.toks):
            if t.is_("#"):
                j = i + 2 if self.tok(i + 1).is_("!") else i + 1
                if self.tok(j).is_("["):
                    self.check_attribute(j + 1, self.close[j])
            elif t.kind == "ident":
                self.check_ident(i, call[i] > 0, define[i] > 0, in_use[i], aliases, std_flagged)
        return self.report.violations()

    def collect_uses(self) -> tuple[list[bool], list[_UseLeaf], bool]:
        """Which tokens sit in `use` items, every imported path, and whether a macro builds imports."""
        in_use = [False] * len(self.toks)
        leaves: list[_UseLeaf] = []
        dynamic_names = False
        for i, t in enumerate(self.toks):
            if t.keyword("use") and not self.tok(i + 1).is_("<"):  # `impl Trait + use<'a>` imports nothing
                end = self.item_end(i + 1)
                for k in range(i, min(end, len(self.toks))):
                    in_use[k] = True
                self.use_tree(i + 1, end, [], leaves)
                dynamic_names = dynamic_names or any(tok.is_("$") for tok in self.toks[i:end])
        return in_use, leaves, dynamic_names

    def std_aliases(self, leaves: list[_UseLeaf]) -> set[str]:
        """Every name that refers to the std crate: `use std as s`, `use std::{self as s}`,
        `extern crate std as s`, and aliases of aliases, wherever they are declared. Scope is ignored:
        a name that is std anywhere is treated as std everywhere."""
        toks = self.toks
        pairs = [
            (toks[i + 2].text, toks[i + 4].text)
            for i, t in enumerate(toks)
            if t.keyword("extern") and self.tok(i + 1).keyword("crate") and self.tok(i + 3).keyword("as")
            and self.tok(i + 2).kind == "ident" and self.tok(i + 4).kind == "ident"
        ]
        for leaf in leaves:
            named = [s for s in leaf.segments if s[0] != "self"]  # `std::{self as s}` names std
            if not leaf.glob and named:
                pairs.append((named[-1][0], leaf.bound))
        aliases = {"std"}
        changed = True
        while changed:
            changed = False
            for original, alias in pairs:
                if original in aliases and alias and alias not in ("_", "self") and alias not in aliases:
                    aliases.add(alias)
                    changed = True
        return aliases

    def check_uses(self, leaves: list[_UseLeaf], aliases: set[str]) -> set[int]:
        """std OS modules reached through use trees (`use std::{io, fs}`) and std globs.
        Returns the tokens reported, so `use std::env` is not reported again as env!."""
        flagged: set[int] = set()
        for leaf in leaves:
            for (a, _), (b, bi) in zip(leaf.segments, leaf.segments[1:]):
                if a in aliases and b in _STD_OS_MODULES:
                    self.flag(bi, "std-os-module", self.std_message(a, b))
                    flagged.add(bi)
                elif a in aliases and b.startswith("$"):
                    self.flag(bi, "std-os-module", self.std_metavariable_message(a))
            if leaf.glob and leaf.segments and leaf.segments[-1][0] in aliases:
                self.flag(
                    leaf.at,
                    "std-os-module",
                    f"`{leaf.segments[-1][0]}::*` imports std::fs, std::net, std::process, std::thread and "
                    "std::env along with everything else; import the items you need by name",
                )
        return flagged

    def check_ident(
        self, i: int, in_call: bool, in_def: bool, in_use: bool, aliases: set[str], std_flagged: set[int]
    ) -> None:
        t, prev, nxt = self.toks[i], self.tok(i - 1), self.tok(i + 1)
        name = t.text

        if t.keyword("mod"):
            if in_call:
                self.flag(
                    i,
                    "file-module",
                    "`mod` inside a macro invocation can be reassembled into a file module (`mod x;`); "
                    "declare modules outside macro calls",
                )
                return
            k = i + 2 if nxt.is_("$") else i + 1
            if self.tok(k).kind == "ident" and self.tok(k + 1).is_("{"):
                return  # an inline module
            shown = self.tok(k).text if self.tok(k).kind == "ident" else "x"
            self.flag(
                i,
                "file-module",
                f"`mod {shown};` loads the module from a host file; write it inline as `mod {shown} {{ ... }}`",
            )
            return

        if t.keyword("extern"):
            if nxt.keyword("crate"):
                crate = self.tok(i + 2)
                if in_call or crate.kind != "ident" or crate.text not in _ALLOWED_CRATES:
                    shown = crate.text if crate.kind == "ident" else "(a crate chosen by a macro)"
                    self.flag(
                        i,
                        "extern-crate",
                        f"extern crate {shown} links an outside crate; only core, alloc and std are available",
                    )
                return
            k = i + 2 if nxt.kind == "str" else i + 1
            if self.tok(k).keyword("fn") and not in_call:
                return  # `extern "C" fn`: a function definition (an export) or a function pointer type
            if self.tok(k).is_("{"):
                message = (
                    "an extern block declares host imports; candidates may only export functions "
                    '(`pub extern "C" fn` definitions are fine)'
                )
            elif in_call:
                message = (
                    "`extern` inside a macro invocation can be reassembled into an extern block, "
                    "which declares host imports"
                )
            else:
                message = "`extern` not followed by `fn` can only be an extern block, which declares host imports"
            self.flag(i, "extern-block", message)
            return

        if name in aliases:
            after = self.tok(i + 2)
            if in_call:
                self.flag(
                    i,
                    "std-os-module",
                    f"`{name}` passed into a macro can be spliced into any std path, including "
                    "std::fs/net/process/thread/env; write std paths outside macro invocations",
                )
            elif nxt.is_("::") and after.kind == "ident" and after.text in _STD_OS_MODULES:
                if not (after.text == "env" and self.tok(i + 3).is_("!")):  # std::env! is the env macro
                    self.flag(i + 2, "std-os-module", self.std_message(name, after.text))
                    std_flagged.add(i + 2)
            elif nxt.is_("::") and after.is_("$"):
                self.flag(i + 2, "std-os-module", self.std_metavariable_message(name))
            elif in_def and not (nxt.is_("::") and after.kind == "ident"):
                self.flag(
                    i,
                    "std-os-module",
                    f"inside macro_rules `{name}` must be followed by `::` and a plain module name; anything "
                    "else lets the macro's caller complete the path (to std::fs, for one)",
                )

        if name in _RUST_MACROS and i not in std_flagged:
            rule, reason = _RUST_MACROS[name]
            if nxt.is_("!"):
                self.flag(i, rule, f"{name}! {reason}")
            elif prev.is_("::") or nxt.is_("::") or in_use:
                self.flag(i, rule, f"`{name}` names the {name}! macro (imports and aliases count), which {reason}")
            elif in_call or in_def:
                self.flag(i, rule, f"`{name}` inside a macro can be spliced into {name}!, which {reason}")

        if (in_call or in_def) and name in _RUST_MACRO_ATTRIBUTE_WORDS:
            rule, reason = _RUST_ATTRIBUTES[name]
            self.flag(i, rule, f"`{name}` inside a macro can be spliced into an attribute: {reason}")

    @staticmethod
    def std_metavariable_message(root: str) -> str:
        return f"{root}::$... lets the macro's caller pick any std module, including fs, net, process, thread and env"

    @staticmethod
    def std_message(root: str, module: str) -> str:
        spelled = f"std::{module}" if root == "std" else f"{root}::{module} (std::{module} through the alias `{root}`)"
        return f"{spelled} {_STD_OS_REASON}"


def check_rust(source: str) -> list[Violation]:
    """Every policy violation in a Rust candidate, sorted by line."""
    return _RustScan(source).run()


# =============================================================================================== C

_TRIGRAPHS = {"=": "#", "/": "\\", "'": "^", "(": "[", ")": "]", "!": "|", "<": "{", ">": "}", "-": "~"}
# Phase 2 line splice as clang does it: backslash, optional horizontal space, then \n, \r, \r\n or \n\r.
_SPLICE = r"[ \t\f\v]*(?:\r\n|\n\r|\n|\r)"
_PHASES = {
    False: re.compile(r"\\" + _SPLICE),
    True: re.compile(r"(?:\\|\?\?/)" + _SPLICE + r"|\?\?([=/'()!<>\-])"),
}
_C_NEWLINE = re.compile(r"\r\n|\r|\n")


class _LogicalText:
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
        self.text = "".join(pieces).replace("\r", "\n")
        self.source_len = len(source)

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


_C_ASM = frozenset({"asm", "__asm", "__asm__", "_asm"})
# Macros that expand to the time of the build (or the source file's modification time).
_C_BUILD_TIME = frozenset({"__DATE__", "__TIME__", "__TIMESTAMP__"})
_BUILD_TIME_MESSAGE = (
    "expands to the time of the build; the build must be reproducible: every voter rebuilds the source "
    "and must get the same SHA-256, so nothing may depend on when (or where) it is compiled"
)
_C_IMPORT = frozenset({"import_module", "import_name", "__import_module__", "__import_name__"})
# Pragmas reach the host too (`#pragma GCC dependency "file"` stats a host file, `push_macro` games can
# hide names); no candidate needs one.
_PRAGMA_MESSAGE = (
    "this pragma can reach the compiler's host (e.g. GCC dependency reads a file's date); only optimisation "
    "pragmas are allowed: once, unroll, nounroll, clang loop, GCC unroll, GCC ivdep"
)
# Pragmas that only steer optimisation; the rest (and the _Pragma operator, whose operand is a string
# this scan does not parse) are refused.
_C_SAFE_PRAGMAS = frozenset({("once",), ("unroll",), ("nounroll",), ("clang", "loop"), ("GCC", "unroll"), ("GCC", "ivdep")})
_C_INCLUDE_DIRECTIVES = frozenset({"include", "include_next", "import", "__include_macros"})
_C_HEADER_DIRECTIVES = _C_INCLUDE_DIRECTIVES | {"embed"}
_C_RAW_PREFIXES = frozenset({"R", "LR", "uR", "UR", "u8R"})
_C_PUNCT = re.compile(
    r"%:%:|\.\.\.|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[*/%+\-&^|]=|##|<:|:>|<%|%>|%:|::|[^\s]",
    re.DOTALL,
)
_C_UCN = r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}"
_C_UCN_RE = re.compile(_C_UCN)
_C_IDENT = re.compile(rf"(?:[A-Za-z_$]|{_C_UCN}|[^\x00-\x7f])(?:[A-Za-z0-9_$]|{_C_UCN}|[^\x00-\x7f])*")
_C_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"?')
_C_CHAR = re.compile(r"'(?:[^'\\\n]|\\[^\n])*'?")
_ALLOWED_LIST = ", ".join(f"<{h}>" for h in sorted(C_ALLOWED_HEADERS))


def _ascii_identifier_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _c_space(c: str) -> bool:
    # clang skips NUL with a warning and treats Unicode whitespace as whitespace.
    return c in " \t\f\v\0" or (c >= "\x80" and (c.isspace() or c == "\ufeff"))


class _CScan:
    """One lexing of the logical text under one compiler configuration."""

    def __init__(
        self, source: str, logical: _LogicalText, raw_strings: bool, digit_separators: bool, report: _Report
    ) -> None:
        self.source = source
        self.lt = logical
        self.text = logical.text
        self.raw_strings = raw_strings
        self.digit_separators = digit_separators
        self.report = report

    def flag(self, p: int, rule: str, message: str) -> None:
        self.report.add(self.lt.to_orig(p), rule, message)

    def identifier_end(self, i: int) -> int:
        m = _C_IDENT.match(self.text, i)
        end = m.end() if m else i + 1
        # A run of "identifier" characters stops at Unicode whitespace.
        for k in range(i, end):
            if _c_space(self.text[k]):
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
            elif c >= "\x80" and not _c_space(c):
                prev, p = c, p + 1
            elif c == "\\" and _C_UCN_RE.match(t, p):
                p += 6 if t[p + 1] == "u" else 10
                prev = ""
            else:
                break
        return p

    def raw_string_end(self, quote: int) -> int | None:
        # Inside a raw string clang undoes phases 1-2, so the body is read from the original text.
        src, o = self.source, self.lt.to_orig(quote) + 1
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
        return self.lt.to_logical(end)

    def header_end(self, p: int) -> tuple[int, str | None]:
        """After an include-like directive name: skip to the header name and lex it as clang does.
        Returns the position after it and the header as written (`<x>` or `"x"`), or None."""
        t, n = self.text, len(self.text)
        while p < n:
            if _c_space(t[p]):
                p += 1
            elif t.startswith("/*", p):
                end = t.find("*/", p + 2)
                p = n if end < 0 else end + 2
            elif t.startswith("//", p) or t[p] == "\n":
                return p, None
            else:
                break
        if p < n and t[p] == "<":
            q = p + 1
            while q < n and t[q] not in ">\n":
                q += 2 if t[q] == "\\" else 1
            if q < n and t[q] == ">":
                return q + 1, t[p : q + 1]
            return p, None  # unterminated: clang lexes a lone `<`, i.e. a computed include
        if p < n and t[p] == '"':
            end = _C_STRING.match(t, p).end()
            return end, t[p:end]
        return p, None

    def directive(self, hash_at: int, name: str, after: int) -> int:
        if name == "pragma":
            line_end = self.text.find("\n", after)
            words = re.findall(r"[A-Za-z_]\w*", self.text[after : len(self.text) if line_end < 0 else line_end])
            if tuple(words[:2]) not in _C_SAFE_PRAGMAS and tuple(words[:1]) not in _C_SAFE_PRAGMAS:
                self.flag(hash_at, "c-pragma", _PRAGMA_MESSAGE)
            return after
        if name not in _C_HEADER_DIRECTIVES:
            return after
        end, header = self.header_end(after)
        if name == "embed":
            message = "#embed reads a host file into the program at compile time; candidates must be self-contained"
            self.flag(hash_at, "c-embed", message)
            return end
        if name == "include" and header and header[0] == "<" and header[1:-1] in C_ALLOWED_HEADERS:
            return end
        if header is None:
            message = f"#{name} with a computed or missing header can name any host file"
        elif name != "include":
            message = f"#{name} {header} is not allowed"
        elif header[0] == '"':
            message = f"#include {header} is not allowed: quotes search the source's own directory first"
        else:
            message = f"#include {header} is not allowed"
        self.flag(hash_at, "c-include", f"{message}; the only headers are #include {_ALLOWED_LIST}")
        return end

    def run(self) -> None:
        t, n = self.text, len(self.text)
        i = 0
        line_start = True  # no token yet on this line; a comment spanning lines counts as a newline
        directive_hash: int | None = None  # a `#` at line start whose directive name comes next
        previous, previous_at = "", 0  # the previous token, to catch `#include` where it is no directive
        while i < n:
            c = t[i]
            if c == "\n":
                # Only a real newline ends a directive: one inside a comment does not.
                line_start, directive_hash = True, None
                i += 1
                continue
            if _c_space(c):
                i += 1
                continue
            if t.startswith("//", i):
                end = t.find("\n", i)
                i = n if end < 0 else end
                continue
            if t.startswith("/*", i):
                end = t.find("*/", i + 2)
                end = n if end < 0 else end + 2
                line_start = line_start or "\n" in t[i:end]
                i = end
                continue

            start, at_line_start, line_start = i, line_start, False
            hash_at, directive_hash = directive_hash, None
            last, last_at, previous_at = previous, previous_at, i
            if c == '"':
                i, previous = _C_STRING.match(t, i).end(), '"'
            elif c == "'":
                i, previous = _C_CHAR.match(t, i).end(), "'"
            elif (c.isascii() and c.isdigit()) or (c == "." and t[i + 1 : i + 2].isdigit() and t[i + 1].isascii()):
                i, previous = self.number_end(i), "0"
            elif (c.isascii() and (c.isalpha() or c in "_$")) or c >= "\x80" or (c == "\\" and _C_UCN_RE.match(t, i)):
                i = self.identifier_end(i)
                word = t[start:i]
                if self.raw_strings and word in _C_RAW_PREFIXES and t[i : i + 1] == '"':
                    end = self.raw_string_end(i)
                    if end is not None:
                        i, previous = end, '"'
                        continue
                if hash_at is not None:
                    i = self.directive(hash_at, word, i)
                elif last == "#" and word in _C_HEADER_DIRECTIVES:
                    # Not a directive (the `#` does not start the line), so clang includes nothing;
                    # but the candidate is trying to, and nothing legitimate looks like this.
                    rule = "c-embed" if word == "embed" else "c-include"
                    message = f"`#{word}` off the start of a line; candidates may not include or embed host files"
                    self.flag(last_at, rule, message)
                self.word(start, word)
                previous = word
            else:
                m = _C_PUNCT.match(t, i)
                i = m.end()
                previous = {"%:": "#", "%:%:": "##"}.get(m.group(), m.group())  # digraphs
                if previous == "#" and at_line_start:
                    directive_hash = start
                elif previous == "##":
                    message = (
                        "## pastes tokens into new identifiers (asm, import_module, __has_include...) that this "
                        "check cannot see; write identifiers out in full"
                    )
                    self.flag(start, "c-token-paste", message)

    def word(self, at: int, word: str) -> None:
        if word in _C_ASM:
            self.flag(at, "c-asm", f"`{word}` embeds raw machine code the policy cannot inspect; write plain C")
        elif word in _C_IMPORT:
            self.flag(at, "c-import", f"`{word}` makes a function a host import; candidates may only export functions")
        elif word in ("__has_include", "__has_include_next"):
            message = f"{word} probes host files at compile time; only {_ALLOWED_LIST} exist, nothing needs probing"
            self.flag(at, "c-include", message)
        elif word == "__has_embed":
            self.flag(at, "c-embed", "__has_embed probes host files at compile time; candidates must be self-contained")
        elif word in ("_Pragma", "__pragma"):
            self.flag(at, "c-pragma", _PRAGMA_MESSAGE)
        elif word in _C_BUILD_TIME:
            self.flag(at, "c-build-time", f"{word} {_BUILD_TIME_MESSAGE}")


def check_c(source: str) -> list[Violation]:
    """Every policy violation in a C candidate, sorted by line.

    Trigraphs, raw string literals (clang >= 19 in gnu modes) and C23 digit separators change where
    comments and literals end, and whether they are on depends on the compiler version and flags. So
    the source is scanned under each configuration that could apply and the findings are combined:
    whatever the compiler's settings, nothing it compiles was hidden from the scan.
    """
    report = _Report(source, _C_NEWLINE)
    for trigraphs in (False, True) if "??" in source else (False,):
        logical = _LogicalText(source, trigraphs)
        raw_modes = (False, True) if 'R"' in logical.text else (False,)
        separator_modes = (False, True) if "'" in logical.text else (False,)
        for raw_strings in raw_modes:
            for digit_separators in separator_modes:
                _CScan(source, logical, raw_strings, digit_separators, report).run()
    return report.violations()
