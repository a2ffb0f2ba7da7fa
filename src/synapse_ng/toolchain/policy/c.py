"""The C rules of the source policy (see `toolchain/policy/__init__.py` for the threat model).

The tokens come from `synapse_ng.languages.c`, which mirrors clang: translation phases 1-2 (trigraphs,
line splices), comments, literals, pp-numbers, header names, digraphs. Here they are only judged:
directives that read host files (`#include` beyond the freestanding headers, `#embed`, their `__has_`
probes), pragmas beyond the optimisation ones, inline assembly, wasm import attributes, token pasting
(which could build any of these names) and the build-time macros that break reproducible builds.
"""

from __future__ import annotations

import re

from ...languages.c import HEADER_DIRECTIVES, CLexer, LogicalText
from .report import Report, Violation

__all__ = ["C_ALLOWED_HEADERS", "check_c"]

# Freestanding headers that only declare types and constants: no functions, so nothing to import.
# The toolchain also compiles with -nostdinc, so these come from the compiler's resource directory.
C_ALLOWED_HEADERS: frozenset[str] = frozenset({"stdint.h", "stddef.h", "stdbool.h", "float.h", "limits.h"})
_ALLOWED_LIST = ", ".join(f"<{h}>" for h in sorted(C_ALLOWED_HEADERS))
_NEWLINE = re.compile(r"\r\n|\r|\n")

_ASM = frozenset({"asm", "__asm", "__asm__", "_asm"})
# Macros that expand to the time of the build (or the source file's modification time).
_BUILD_TIME = frozenset({"__DATE__", "__TIME__", "__TIMESTAMP__"})
_BUILD_TIME_MESSAGE = (
    "expands to the time of the build; the build must be reproducible: every voter rebuilds the source "
    "and must get the same SHA-256, so nothing may depend on when (or where) it is compiled"
)
_IMPORT = frozenset({"import_module", "import_name", "__import_module__", "__import_name__"})
# Pragmas reach the host too (`#pragma GCC dependency "file"` stats a host file, `push_macro` games can
# hide names); no candidate needs one.
_PRAGMA_MESSAGE = (
    "this pragma can reach the compiler's host (e.g. GCC dependency reads a file's date); only optimisation "
    "pragmas are allowed: once, unroll, nounroll, clang loop, GCC unroll, GCC ivdep"
)
# Pragmas that only steer optimisation; the rest (and the _Pragma operator, whose operand is a string
# this scan does not parse) are refused.
_SAFE_PRAGMAS = frozenset(
    {("once",), ("unroll",), ("nounroll",), ("clang", "loop"), ("GCC", "unroll"), ("GCC", "ivdep")}
)
_DIGRAPHS = {"%:": "#", "%:%:": "##"}
_TOKEN_PASTE_MESSAGE = (
    "## pastes tokens into new identifiers (asm, import_module, __has_include...) that this "
    "check cannot see; write identifiers out in full"
)


class _CScan:
    """The rules applied to one lexing of the source under one compiler configuration."""

    def __init__(self, lexer: CLexer, report: Report) -> None:
        self.lexer = lexer
        self.report = report

    def flag(self, p: int, rule: str, message: str) -> None:
        self.report.add(self.lexer.logical.to_orig(p), rule, message)

    def pragma(self, hash_at: int, after: int) -> None:
        # The words of the whole line, comments and strings included: stricter than the tokens.
        text = self.lexer.text
        line_end = text.find("\n", after)
        words = re.findall(r"[A-Za-z_]\w*", text[after : len(text) if line_end < 0 else line_end])
        if tuple(words[:2]) not in _SAFE_PRAGMAS and tuple(words[:1]) not in _SAFE_PRAGMAS:
            self.flag(hash_at, "c-pragma", _PRAGMA_MESSAGE)

    def include(self, hash_at: int, name: str, header: str | None) -> None:
        """An include-like directive with its header name (None: computed or missing)."""
        if name == "embed":
            message = (
                "#embed reads a host file into the program at compile time; candidates must be self-contained"
            )
            self.flag(hash_at, "c-embed", message)
            return
        if name == "include" and header and header[0] == "<" and header[1:-1] in C_ALLOWED_HEADERS:
            return
        if header is None:
            message = f"#{name} with a computed or missing header can name any host file"
        elif name != "include":
            message = f"#{name} {header} is not allowed"
        elif header[0] == '"':
            message = f"#include {header} is not allowed: quotes search the source's own directory first"
        else:
            message = f"#include {header} is not allowed"
        self.flag(hash_at, "c-include", f"{message}; the only headers are #include {_ALLOWED_LIST}")

    def run(self) -> None:
        hash_at: int | None = None  # a directive's `#` whose name comes next
        pending: tuple[int, str] | None = None  # an include-like directive whose header name comes next
        previous, previous_at = "", 0  # the previous token, to catch `#include` where it is no directive
        for token in self.lexer.tokens():
            if token.kind in ("ws", "newline", "comment"):
                continue
            if pending is not None:
                header = token.text if token.kind == "header" else None
                self.include(*pending, header)
                pending = None
                if token.kind in ("header", "eol"):
                    continue
            if token.kind == "eol":
                continue
            directive_at, hash_at = hash_at, None
            last, last_at, previous_at = previous, previous_at, token.start
            if token.kind == "ident":
                word = token.text
                if directive_at is not None and word == "pragma":
                    self.pragma(directive_at, token.end)
                elif directive_at is not None and word in HEADER_DIRECTIVES:
                    pending = (directive_at, word)
                elif directive_at is None and last == "#" and word in HEADER_DIRECTIVES:
                    # Not a directive (the `#` does not start the line), so clang includes nothing;
                    # but the candidate is trying to, and nothing legitimate looks like this.
                    rule = "c-embed" if word == "embed" else "c-include"
                    message = (
                        f"`#{word}` off the start of a line; candidates may not include or embed host files"
                    )
                    self.flag(last_at, rule, message)
                self.word(token.start, word)
                previous = word
            elif token.kind in ("punct", "hash"):
                previous = _DIGRAPHS.get(token.text, token.text)
                if token.kind == "hash":
                    hash_at = token.start
                elif previous == "##":
                    self.flag(token.start, "c-token-paste", _TOKEN_PASTE_MESSAGE)
            else:
                previous = {"string": '"', "char": "'", "number": "0"}[token.kind]

    def word(self, at: int, word: str) -> None:
        if word in _ASM:
            self.flag(
                at, "c-asm", f"`{word}` embeds raw machine code the policy cannot inspect; write plain C"
            )
        elif word in _IMPORT:
            self.flag(
                at,
                "c-import",
                f"`{word}` makes a function a host import; candidates may only export functions",
            )
        elif word in ("__has_include", "__has_include_next"):
            message = (
                f"{word} probes host files at compile time; only {_ALLOWED_LIST} exist, nothing needs probing"
            )
            self.flag(at, "c-include", message)
        elif word == "__has_embed":
            self.flag(
                at,
                "c-embed",
                "__has_embed probes host files at compile time; candidates must be self-contained",
            )
        elif word in ("_Pragma", "__pragma"):
            self.flag(at, "c-pragma", _PRAGMA_MESSAGE)
        elif word in _BUILD_TIME:
            self.flag(at, "c-build-time", f"{word} {_BUILD_TIME_MESSAGE}")


def check_c(source: str) -> list[Violation]:
    """Every policy violation in a C candidate, sorted by line.

    Trigraphs, raw string literals (clang >= 19 in gnu modes) and C23 digit separators change where
    comments and literals end, and whether they are on depends on the compiler version and flags. So
    the source is scanned under each configuration that could apply and the findings are combined:
    whatever the compiler's settings, nothing it compiles was hidden from the scan.
    """
    report = Report(source, _NEWLINE)
    for trigraphs in (False, True) if "??" in source else (False,):
        text = LogicalText(source, trigraphs).text
        raw_modes = (False, True) if 'R"' in text else (False,)
        separator_modes = (False, True) if "'" in text else (False,)
        for raw_strings in raw_modes:
            for digit_separators in separator_modes:
                lexer = CLexer(
                    source, trigraphs=trigraphs, raw_strings=raw_strings, digit_separators=digit_separators
                )
                _CScan(lexer, report).run()
    return report.violations()
