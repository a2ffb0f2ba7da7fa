"""The Rust rules of the source policy (see `toolchain/policy/__init__.py` for the threat model).

The tokens come from `synapse_ng.languages.rust`, the transcription of rustc_lexer, so that comments,
raw strings, lifetimes and identifiers end exactly where rustc ends them; here they are read as rustc's
parser reads them (identifiers NFC-normalised, `r#` raw identifiers never keywords, `::` and `!=`
glued), and everything else is rules: macros that reach outside, attributes, file modules, extern
blocks and crates, std's OS modules (through aliases, use trees and globs) and what a macro could
reassemble into any of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from ...languages.rust import lex_rust
from ...languages.tokens import glue
from .report import Report, Violation

__all__ = ["check_rust"]

# Keywords (strict and reserved) never name a macro: `if !(x)` and `return !(x)` are not invocations.
_RUST_KEYWORDS = frozenset(
    {
        "as",
        "break",
        "const",
        "continue",
        "crate",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "Self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "async",
        "await",
        "dyn",
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "macro",
        "override",
        "priv",
        "typeof",
        "unsized",
        "virtual",
        "yield",
        "try",
        "gen",
    }
)

# Built-in macros that reach outside the program: name -> (rule, why it is banned).
_READS_FILE = "reads a host file at compile time; candidates must be self-contained"
_READS_ENV = (
    "bakes a build-environment variable into the binary; candidates must not read the host environment"
)
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
_ATTRIBUTE_REASONS = {
    "path-attribute": {
        "path": "#[path] points a module at an arbitrary host file; "
        "candidates must be one self-contained file",
        "debugger_visualizer": "#[debugger_visualizer] reads a host file at compile time "
        "and embeds it in the binary",
    },
    "link-attribute": {
        "link": f"#[link] links host libraries or names a wasm import module; {_NO_IMPORTS}",
        "link_name": f"#[link_name] names a host import; {_NO_IMPORTS}",
        "wasm_import_module": f"#[wasm_import_module] names a host import module; {_NO_IMPORTS}",
        "link_ordinal": f"#[link_ordinal] names a host import; {_NO_IMPORTS}",
        "link_section": "#[link_section] places data in a chosen linker/custom section; "
        "candidates may not steer linking",
    },
    "feature-gate": {
        "feature": "#![feature] enables unstable compiler features; candidates must compile on stable Rust",
    },
    "proc-macro": {
        name: f"#[{name}] {_PROC_MACRO}"
        for name in ("proc_macro", "proc_macro_derive", "proc_macro_attribute")
    },
}
_RUST_ATTRIBUTES = {
    name: (rule, why) for rule, names in _ATTRIBUTE_REASONS.items() for name, why in names.items()
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
    "gives access to OS facilities (files, network, processes, threads, environment) "
    "that candidates must not use"
)

_ALLOWED_CRATES = frozenset({"core", "alloc", "std"})

# std macros whose arguments are parsed as expressions, patterns or format strings: they cannot splice
# tokens into paths or items, so their arguments are checked as ordinary code. Exempt only while the
# candidate does not define or import a macro of the same name.
_STD_EXPRESSION_MACROS = frozenset(
    {
        "assert",
        "assert_eq",
        "assert_ne",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
        "vec",
        "format",
        "format_args",
        "print",
        "println",
        "eprint",
        "eprintln",
        "write",
        "writeln",
        "panic",
        "unreachable",
        "todo",
        "unimplemented",
        "matches",
        "dbg",
        "concat",
        "stringify",
        "cfg",
        "compile_error",
        "line",
        "column",
        "file",
        "module_path",
    }
)

_OPENERS = {"(": ")", "[": "]", "{": "}"}


class _Tok:
    __slots__ = ("kind", "pos", "raw", "text")

    def __init__(self, kind: str, text: str, pos: int, raw: bool = False) -> None:
        self.kind = kind  # ident, lifetime, string, char, number, punct, unknown (as languages.rust)
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


def _policy_tokens(source: str) -> list[_Tok]:
    """The code tokens of `source` as rustc's parser sees them (comments and whitespace dropped)."""
    out: list[_Tok] = []
    for t in glue([t for t in lex_rust(source) if t.kind not in ("ws", "comment")], ("::", "!=")):
        if t.kind == "ident":
            raw = t.text.startswith("r#")
            out.append(
                _Tok("ident", unicodedata.normalize("NFC", t.text[2:] if raw else t.text), t.start, raw)
            )
        else:
            out.append(_Tok(t.kind, t.text, t.start))
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
        self.toks = _policy_tokens(source)
        self.close = _match_brackets(self.toks)
        self.report = Report(source, re.compile(r"\n"))

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
        for macro, opener in calls:
            if macro in _STD_EXPRESSION_MACROS and macro not in names and not dynamic_names:
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
        pairs: list[tuple[str, str | None]] = [
            (toks[i + 2].text, toks[i + 4].text)
            for i, t in enumerate(toks)
            if t.keyword("extern")
            and self.tok(i + 1).keyword("crate")
            and self.tok(i + 3).keyword("as")
            and self.tok(i + 2).kind == "ident"
            and self.tok(i + 4).kind == "ident"
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
            for (a, _), (b, bi) in zip(leaf.segments, leaf.segments[1:], strict=False):
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
                f"`mod {shown};` loads the module from a host file; "
                f"write it inline as `mod {shown} {{ ... }}`",
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
                        f"extern crate {shown} links an outside crate; "
                        "only core, alloc and std are available",
                    )
                return
            k = i + 2 if nxt.kind == "string" else i + 1
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
                message = (
                    "`extern` not followed by `fn` can only be an extern block, which declares host imports"
                )
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
                self.flag(
                    i, rule, f"`{name}` names the {name}! macro (imports and aliases count), which {reason}"
                )
            elif in_call or in_def:
                self.flag(i, rule, f"`{name}` inside a macro can be spliced into {name}!, which {reason}")

        if (in_call or in_def) and name in _RUST_MACRO_ATTRIBUTE_WORDS:
            rule, reason = _RUST_ATTRIBUTES[name]
            self.flag(i, rule, f"`{name}` inside a macro can be spliced into an attribute: {reason}")

    @staticmethod
    def std_metavariable_message(root: str) -> str:
        return (
            f"{root}::$... lets the macro's caller pick any std module, "
            "including fs, net, process, thread and env"
        )

    @staticmethod
    def std_message(root: str, module: str) -> str:
        spelled = (
            f"std::{module}"
            if root == "std"
            else f"{root}::{module} (std::{module} through the alias `{root}`)"
        )
        return f"{spelled} {_STD_OS_REASON}"


def check_rust(source: str) -> list[Violation]:
    """Every policy violation in a Rust candidate, sorted by line."""
    return _RustScan(source).run()
