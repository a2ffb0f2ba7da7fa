"""The prompts that ask a language model for a better EVOLVE block, and for the repair of a broken one.

    build_messages(component, language, *, problem, parent, inspirations=[], last_error=None,
                   mode="block") -> [Message("system", ...), Message("user", ...)]
    repair_messages(component, language, block, compile_log) -> [Message(...), Message(...)]
    ParentInfo(block, scores, summary)          a program shown to the model, with its measured scores
    skeleton_excerpt(component, language)        the fixed harness as the model sees it
    trim_error(log)                              the first errors of a compile log, or a failure, short

Written for small local models (a 1.5B coder) as much as for strong remote ones: short, concrete, one
thing asked, the same section order every time, the answer format spelt out. The user message holds,
in order: the problem, the goal (objective metric and direction, exact or heuristic), the rules (only
the block changes, the required signature, language constraints, no I/O, no crates), the harness
excerpt (the code around the block, cut down to what the block needs: the header comment, the types
and constants it may use, the block's signature with its doc comment, and the lines of the harness
that call it), the parent block with its scores, up to two inspirations, the last failure, the idea
to try this time (when the search passes one of the component's directions), and the answer format:
one fenced block (mode "block") or SEARCH/REPLACE edits of the parent (mode "edits").

Sizes: the whole prompt (system + user) is kept within PROMPT_BUDGET characters (one and a half times
that for WAT, which takes two to three times the characters of Rust or C for the same code: see
`prompt_budget`), and what the other
sections leave of it goes to the harness excerpt (at most SKELETON_BUDGET). The excerpt shrinks in
steps (notes, call-site context, the header comment, comments before the block, declarations before
the block) and always keeps the EVOLVE markers and the signature(s) with their doc comment. When
less than MIN_EXCERPT would be left, inspirations are dropped first (the last first), then the
problem and the last error are shortened; the parent block itself is never cut, so a very long parent
can still push a prompt over the budget. With the baseline as parent and a compile error, every real
component and language fits without dropping anything (tests/test_prompts.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..components.base import (
    EVOLVE_END,
    EVOLVE_START,
    Component,
    ComponentKind,
    split_skeleton,
)
from ..languages import as_language, find_functions, top_level_items
from ..llm.base import Message
from ..models import CodeLanguage
from .extract import required_functions

__all__ = [
    "PROMPT_BUDGET",
    "SKELETON_BUDGET",
    "ParentInfo",
    "build_messages",
    "prompt_budget",
    "repair_messages",
    "skeleton_excerpt",
    "trim_error",
]

SKELETON_BUDGET = 3000  # characters of harness excerpt
PROMPT_BUDGET = 6000  # characters of system + user message, when the parent block allows it
MIN_EXCERPT = 900  # below this the excerpt is only the signature and the call site
PROBLEM_CHARS = 700
ERROR_CHARS = 1200
MODES = ("block", "edits")
# WAT spells out every operand (`(i32.add (local.get $i) (i32.const 1))` for `i + 1`): the same block is
# two to three times as long as in Rust or C, so a WAT prompt gets a larger default budget.
_BUDGET_SCALE = {CodeLanguage.WAT: 1.5}


def prompt_budget(language: CodeLanguage | str) -> int:
    """The default size of a prompt in `language`, in characters (PROMPT_BUDGET, scaled for WAT)."""
    return int(PROMPT_BUDGET * _BUDGET_SCALE.get(as_language(language), 1.0))


@dataclass(frozen=True)
class ParentInfo:
    """A program shown to the model: its block, its measured scores (name -> value, e.g.
    {"train_or bins": 212.4}) and a one-line summary (how it was made, its improvement, ...)."""

    block: str
    scores: dict[str, float] = field(default_factory=dict)
    summary: str = ""


_NAMES = {
    CodeLanguage.RUST: "Rust",
    CodeLanguage.C: "C",
    CodeLanguage.WAT: "WebAssembly text (WAT)",
    CodeLanguage.ASSEMBLYSCRIPT: "AssemblyScript",
}
_FENCE_TAGS = {
    CodeLanguage.RUST: "rust",
    CodeLanguage.C: "c",
    CodeLanguage.WAT: "wat",
    CodeLanguage.ASSEMBLYSCRIPT: "ts",
}
_CONSTRAINTS = {
    CodeLanguage.RUST: (
        "Rust 2021 for wasm32-unknown-unknown, std available (Vec, slices, iterators, HashMap, f64 methods "
        "such "
        "as sqrt, exp, ln, powf). No external crates, no extern blocks, no include!/env!/asm!, no "
        "#![feature], "
        "no std::fs/net/process/thread/env."
    ),
    CodeLanguage.C: (
        "Freestanding C11 (clang, wasm32), no libc: only <stdint.h> <stddef.h> <stdbool.h> <float.h> "
        "<limits.h>. "
        "No malloc (use static arrays), no printf, no <math.h>: use __builtin_sqrt, __builtin_fabs, "
        "__builtin_floor, __builtin_ceil, __builtin_fmin, __builtin_fmax (there is no exp, log or pow)."
    ),
    CodeLanguage.WAT: (
        "WebAssembly text format: only (func ...) definitions; no imports, no memory, table or export "
        "declarations."
    ),
    CodeLanguage.ASSEMBLYSCRIPT: "AssemblyScript: no imports, no host functions.",
}


# ====================================================================================== harness excerpt


def _signatures(component: Component, language: CodeLanguage) -> list[tuple[str, str]]:
    """(doc comment, signature) of each required function, from the baseline block."""
    block = component.baseline_block(language)
    required = required_functions(component, language)
    found = []
    for function in find_functions(block, language):
        if function.name in required:
            doc = block[function.start : function.code_start].strip("\n")
            found.append((doc, function.signature or function.name))
    return found


def _one_line(signature: str) -> str:
    return re.sub(r"\s*\n\s*", " ", signature).strip()


def _required_text(component: Component, language: CodeLanguage) -> str:
    return " and ".join(f"`{_one_line(sig)}`" for _, sig in _signatures(component, language))


def _interface(component: Component, language: CodeLanguage) -> str:
    body = " (func ...)" if language is CodeLanguage.WAT else " { ... }"
    parts = []
    for doc, signature in _signatures(component, language):
        parts.append((doc + "\n" if doc else "") + signature + ("" if language is CodeLanguage.WAT else body))
    return "\n".join(parts)


def _marker_line(part: str, marker: str) -> str:
    for line in part.split("\n"):
        if marker in line:
            return line.strip()
    return f"// {marker}"


def _window(lines: list[str], needles: tuple[str, ...], radius: int, comment: str = "//") -> list[str]:
    """The lines of an item up to its opening brace, its last line, and the lines around every mention of
    a needle; the rest becomes `// ...`."""
    if len(lines) <= 2 * radius + 4:
        return lines
    opening = next((i for i, line in enumerate(lines) if line.rstrip().endswith("{")), 0)
    keep = set(range(opening + 1)) | {len(lines) - 1}
    for index, line in enumerate(lines):
        if any(re.search(rf"\b{re.escape(needle)}\b", line) for needle in needles):
            keep.update(range(max(0, index - radius), min(len(lines), index + radius + 1)))
    out, previous = [], -1
    first = lines[1] if len(lines) > 1 else ""
    indent = first[: len(first) - len(first.lstrip())] or "    "  # its leading whitespace
    for index in sorted(keep):
        if index != previous + 1:
            out.append(f"{indent}{comment} ...")
        out.append(lines[index])
        previous = index
    return out


# One way skeleton_excerpt shortens its excerpt: new notes (lines), or new text after or before the block.
_Shortening = Callable[[], tuple[Literal["notes"], list[str]] | tuple[Literal["after", "before"], str]]


def skeleton_excerpt(
    component: Component, language: CodeLanguage | str, budget: int = SKELETON_BUDGET
) -> str:
    """The fixed harness as the model sees it: the header and the declarations before the block
    (buffers left out), the block's signature(s) with their doc comment between the EVOLVE markers, and
    the harness lines that call the block. Within `budget` characters (the header comment shrinks
    first); the signature and its doc comment are always there."""
    language = as_language(language)
    head, _, tail = split_skeleton(component.skeleton(language))
    required = required_functions(component, language)
    start_line, end_line = _marker_line(head, EVOLVE_START), _marker_line(tail, EVOLVE_END)
    head_code = head[: head.rfind(start_line)] if start_line in head else head
    tail_code = tail[tail.find(end_line) + len(end_line) :] if end_line in tail else tail
    comment = ";;" if language is CodeLanguage.WAT else "//"

    # Before the block: everything but the buffers (statics), which the block never touches.
    kept_head, cursor, omitted = [], 0, []
    for item in top_level_items(head_code, language):
        if item.kind == "static":
            kept_head.append(head_code[cursor : item.code_start])
            cursor = item.end
            omitted.append(item.name or "?")
    kept_head.append(head_code[cursor:])
    before = _squeeze("".join(kept_head))

    # After the block: the items that call it, cut to the lines around the calls.
    calls, others = [], []
    for item in top_level_items(tail_code, language):
        text = tail_code[item.code_start : item.end]
        if any(name in item.idents for name in required):
            calls.append(text)
        elif item.name:
            others.append(item.name)
    after = "\n\n".join("\n".join(_window(c.split("\n"), required, 3, comment)) for c in calls)
    notes = []
    if omitted:
        notes.append(f"{comment} (harness buffers, not for the block: {', '.join(omitted)})")
    if others:
        notes.append(f"{comment} (also in the harness: {', '.join(others)})")

    interface = f"{start_line}\n{_interface(component, language)}\n{end_line}"

    def render(before_text: str, after_text: str, notes: list[str]) -> str:
        sections = [
            s for s in (before_text.strip("\n"), interface, after_text.strip("\n"), "\n".join(notes)) if s
        ]
        return "\n\n".join(sections) + "\n"

    # Over budget: drop the notes, narrow the call sites, shorten the header comment, drop the comments
    # before the block, and at last the declarations before it; the interface always stays.
    steps: list[_Shortening] = [
        lambda: ("notes", []),
        lambda: (
            "after",
            "\n\n".join("\n".join(_window(c.split("\n"), required, 1, comment)) for c in calls),
        ),
        lambda: ("before", _shrink_comments(before, len(render(before, after, notes)) - budget)),
        lambda: ("before", _strip_comment_lines(before)),
        lambda: ("before", ""),
    ]
    excerpt = render(before, after, notes)
    for step in steps:
        if len(excerpt) <= budget:
            break
        part = step()
        if part[0] == "notes":
            notes = part[1]
        elif part[0] == "after":
            after = part[1]
        else:
            before = part[1]
        excerpt = render(before, after, notes)
    return excerpt


def _strip_comment_lines(text: str) -> str:
    """The code lines only (whole-line comments, including block comments, removed)."""
    out, in_block = [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if in_block:
            in_block = "*/" not in stripped
            continue
        if stripped.startswith(("//", ";;")):
            continue
        if stripped.startswith("/*"):
            in_block = "*/" not in stripped
            continue
        out.append(line)
    return _squeeze("\n".join(out)).strip("\n")


def _squeeze(text: str) -> str:
    """Collapse runs of blank lines."""
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", text)


def _shrink_comments(text: str, excess: int) -> str:
    """Drop comment lines from the end of the longest comment runs (each run keeps its first line, and
    a block comment keeps its end) until `excess` characters are saved."""
    lines = text.split("\n")
    comment = re.compile(r"^\s*(//|/\*|\*|;;)")
    runs: list[list[int]] = []
    current: list[int] = []
    for i, line in enumerate(lines):
        if comment.match(line):
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    saved = 0
    drop: set[int] = set()
    closing: dict[int, str] = {}
    for run in sorted(runs, key=len, reverse=True):
        if saved >= excess:
            break
        kept = len(run)
        for i in reversed(run[1:]):
            if saved >= excess:
                break
            drop.add(i)
            saved += len(lines[i]) + 1
            kept -= 1
        last_kept = run[kept - 1]
        if any("*/" in lines[i] for i in run[kept:]) and "*/" not in lines[last_kept]:
            closing[last_kept] = " ... */"
        elif kept < len(run):
            closing[last_kept] = " ..."
    return "\n".join(line + closing.get(i, "") for i, line in enumerate(lines) if i not in drop)


# ============================================================================================ errors

_HEADER = re.compile(
    r"^(?:\S+:\d+:\d+: |\S+: )?(?:fatal error|error|warning)(?:\[[A-Za-z0-9_-]+\])?:", re.IGNORECASE
)
_ERROR_HEADER = re.compile(
    r"^(?:\S+:\d+:\d+: |\S+: )?(?:fatal error|error)(?:\[[A-Za-z0-9_-]+\])?:", re.IGNORECASE
)
_NOISE = re.compile(
    r"^(error: aborting due to|Some errors have detailed|For more information about|\d+ warnings? (and \d+ "
    r"errors? )?generated|"
    r"\d+ errors? generated|warning: \d+ warnings? emitted|clang: error: linker command failed)"
)


def trim_error(log: str, max_chars: int = ERROR_CHARS, max_errors: int = 3) -> str:
    """The first `max_errors` distinct error messages of a compile log (rustc or clang: with their
    source lines and notes; warnings and summaries dropped), or the text itself when it is not a compile
    log (a failing case, a policy rejection), cut to `max_chars` at a line boundary."""
    text = (log or "").replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    lines = text.split("\n")
    if any(_ERROR_HEADER.match(line) for line in lines):
        blocks: list[list[str]] = []
        current: list[str] | None = None
        for line in lines:
            if _NOISE.match(line):
                current = None
                continue
            if _HEADER.match(line):
                current = [line] if _ERROR_HEADER.match(line) else None
                if current is not None:
                    blocks.append(current)
                continue
            if current is not None:
                current.append(line)
        distinct: list[str] = []
        for block in blocks:
            rendered = "\n".join(block).rstrip()
            if rendered not in distinct:
                distinct.append(rendered)
        if distinct:
            shown = distinct[:max_errors]
            more = len(distinct) - len(shown)
            text = "\n\n".join(shown) + (
                f"\n\n({more} more error{'s' if more > 1 else ''} not shown)" if more else ""
            )
    return _cut(text, max_chars)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars].rsplit("\n", 1)[0] if "\n" in text[:max_chars] else text[:max_chars]
    return cut + f"\n... ({len(text) - len(cut)} more characters)"


def _map_lines(log: str, component: Component, language: CodeLanguage, block: str) -> str:
    """Rewrite `candidate.rs:13:30` / `candidate.c:18:11` / WAT's `<anon>:29:10` and the `13 |` gutters
    as block lines (the model sees the block, not the assembled program)."""
    head, _, _ = split_skeleton(component.skeleton(language))
    offset = head.count("\n")
    length = block.strip("\n").count("\n") + 1

    def where(number: int) -> str | None:
        line = number - offset
        return str(line) if 1 <= line <= length else None

    def location(m: re.Match) -> str:
        mapped = where(int(m.group(2)))
        return f"block line {mapped}:{m.group(3)}" if mapped else f"harness line {m.group(2)}:{m.group(3)}"

    # wat2wasm names the text it parses `<anon>`.
    log = re.sub(r"(candidate\.(?:rs|c|wat)|<anon>):(\d+):(\d+)", location, log)

    def gutter(m: re.Match) -> str:
        mapped = where(int(m.group(2)))
        return f"{m.group(1)}{mapped.rjust(len(m.group(2)))}{m.group(3)}" if mapped else m.group(0)

    return re.sub(r"^(\s*)(\d+)(\s*\|)", gutter, log, flags=re.MULTILINE)


# =========================================================================================== prompts


def _fmt(value: float) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return (
            f"{int(value):,}"
            if abs(value) >= 10_000
            else str(int(value))
            if isinstance(value, int)
            else f"{value:g}"
        )
    return f"{value:.6g}"


def _scores(scores: dict[str, float]) -> str:
    if not scores:
        return "not measured"
    return ", ".join(f"{name} = {_fmt(value)}" for name, value in scores.items())


def _fenced(code: str, language: CodeLanguage) -> str:
    return f"```{_FENCE_TAGS.get(language, '')}\n{code.strip(chr(10))}\n```"


def _system(language: CodeLanguage) -> Message:
    name = _NAMES.get(language, language.value)
    return Message(
        "system",
        f"You are an expert {name} programmer. You improve one function of a program that is compiled to "
        "WebAssembly and measured in a sandbox. You change only the EVOLVE block, follow the rules exactly, "
        "and answer with code only.",
    )


def _goal(component: Component) -> str:
    objective = component.objective
    verb = "lower" if objective.direction == "min" else "higher"
    lines = [
        f"Component `{component.name}`: {component.description}",
        f"Objective: {'minimize' if objective.direction == 'min' else 'maximize'} {objective.aggregation} "
        f"`{objective.metric}`: {objective.description}"
        + ("" if "better" in objective.description else f" ({verb} is better)")
        + ".",
    ]
    if component.kind is ComponentKind.EXACT:
        lines.append(
            "Kind: exact. The block must return exactly what the current block returns, on every input "
            "(edge cases "
            "included); a wrong answer scores nothing. Win by doing less work."
        )
    else:
        lines.append(
            "Kind: heuristic. Any valid output counts and the objective decides; invalid output scores "
            "nothing."
        )
    if component.hints:
        lines.append("What is known to matter:")
        lines += [f"- {hint}" for hint in component.hints]
    return "\n".join(lines)


def _rules(component: Component, language: CodeLanguage) -> str:
    return "\n".join(
        [
            (
                f"- Write only the EVOLVE block. It must define {_required_text(component, language)} with "
                "exactly this "
                "signature (your own helpers, types and constants are fine)."
            ),
            "- Do not repeat the fixed harness (its types, constants, buffers, exported functions).",
            f"- {_CONSTRAINTS.get(language, '')}",
            "- No I/O (files, network, environment, clock, printing). Deterministic: use only the inputs.",
            "- Fuel and memory are limited: no panics, no huge allocations, keep it fast.",
        ]
    )


def _answer(component: Component, language: CodeLanguage, mode: str) -> str:
    metric = component.objective.metric
    verb = "lowers" if component.objective.direction == "min" else "raises"
    tag = _FENCE_TAGS.get(language, "")
    if mode == "edits":
        return (
            f"Change the current block so that it {verb} `{metric}`. Reply only with SEARCH/REPLACE edits "
            "of the "
            "current block, each in exactly this form:\n"
            "<<<<<<< SEARCH\n(lines copied exactly from the current block)\n=======\n(the new "
            "lines)\n>>>>>>> REPLACE\n"
            "Every SEARCH must match lines of the current block exactly. Use several edits for changes in "
            "several places."
        )
    return (
        f"Write an improved block that {verb} `{metric}`. Reply with the complete new block (everything "
        "between "
        f"the EVOLVE markers, not the harness) in a single ```{tag} code block, and nothing else."
    )


def _program(title: str, info: ParentInfo, language: CodeLanguage) -> str:
    lines = [f"{title} (scores: {_scores(info.scores)})"]
    if info.summary:
        lines.append(info.summary.strip())
    lines.append(_fenced(info.block, language))
    return "\n".join(lines)


def _template(template: str, language: CodeLanguage) -> str:
    return (
        "## The block to complete\nThe idea's block, with its rule left for you: replace the comment that "
        "says `write the rule here` with the rule (named constants above it are welcome), and keep the "
        f"rest.\n{_fenced(template, language)}"
    )


def build_messages(
    component: Component,
    language: CodeLanguage | str,
    *,
    problem: str,
    parent: ParentInfo,
    inspirations: Sequence[ParentInfo] = (),
    last_error: str | None = None,
    mode: str = "block",
    direction: str | None = None,
    template: str | None = None,
    budget: int | None = None,
) -> list[Message]:
    """[system, user] asking for a better block than `parent` (see the module docstring). `direction`:
    one idea to try this time (one of the component's `directions`), placed just before the answer
    instructions. `template`: the direction's block with its rule left as a hole, shown in place of the
    parent (Component.templates: a parent that is still the baseline). `budget`: the characters the
    prompt may take (raise it for models with a large context: more harness, and the inspirations, which
    do not fit 6,000 characters next to a 1.5k-character parent); by default `prompt_budget(language)`."""
    language = as_language(language)
    budget = prompt_budget(language) if budget is None else budget
    if mode not in MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; known: {', '.join(MODES)}")
    system = _system(language)
    problem_text = _cut((problem or "").strip() or f"Improve `{component.name}`.", PROBLEM_CHARS)
    error_text = trim_error(last_error) if last_error and last_error.strip() else None
    chosen = list(inspirations)[:2]

    def render(excerpt: str, problem_text: str, error_text: str | None, chosen: list[ParentInfo]) -> str:
        sections = [
            f"## Problem\n{problem_text}",
            f"## Goal\n{_goal(component)}",
            f"## Rules\n{_rules(component, language)}",
            f"## The fixed program around the block (excerpt)\n{_fenced(excerpt, language)}",
            _template(template, language) if template else _program("## Current block", parent, language),
        ]
        if chosen:
            sections.append(
                "## Other good blocks, for ideas\n"
                + "\n\n".join(
                    _program(f"### Version {chr(ord('A') + i)}", info, language)
                    for i, info in enumerate(chosen)
                )
            )
        if error_text:
            sections.append(f"## Your last attempt failed; avoid this\n```\n{error_text}\n```")
        if direction:
            sections.append(f"## Idea to try this time\n{direction.strip()}")
        sections.append(f"## Answer\n{_answer(component, language, mode)}")
        return "\n\n".join(sections)

    # What is left of the budget goes to the harness excerpt. Inspirations are dropped (the last first)
    # while the excerpt would get less than MIN_EXCERPT; then the problem and the error are shortened.
    def room(problem_text: str, error_text: str | None, chosen: list[ParentInfo]) -> int:
        return budget - len(system.content) - len(render("", problem_text, error_text, chosen))

    while chosen and room(problem_text, error_text, chosen) < MIN_EXCERPT:
        chosen = chosen[:-1]
    if room(problem_text, error_text, chosen) < MIN_EXCERPT:
        problem_text = _cut(problem_text, 300)
        error_text = (
            trim_error(last_error, max_chars=600, max_errors=1) if error_text and last_error else None
        )
    excerpt = skeleton_excerpt(
        component, language, budget=min(SKELETON_BUDGET, room(problem_text, error_text, chosen))
    )
    return [system, Message("user", render(excerpt, problem_text, error_text, chosen))]


def repair_messages(
    component: Component,
    language: CodeLanguage | str,
    block: str,
    compile_log: str,
    *,
    budget: int | None = None,
) -> list[Message]:
    """[system, user] sending a block that does not compile back with its first errors (line numbers
    rewritten to the block's own), asking for the corrected block (`budget`: as in build_messages)."""
    language = as_language(language)
    budget = prompt_budget(language) if budget is None else budget
    errors = trim_error(_map_lines(compile_log or "", component, language, block))
    system = _system(language)

    def render(excerpt: str) -> str:
        return "\n\n".join(
            [
                f"This EVOLVE block for `{component.name}` does not compile.",
                f"## Rules\n{_rules(component, language)}",
                f"## The fixed program around the block (excerpt)\n{_fenced(excerpt, language)}",
                f"## The block\n{_fenced(block, language)}",
                f"## Compiler errors\n```\n{errors}\n```",
                (
                    "## Answer\nFix these errors and keep the block's idea. Reply with the complete "
                    "corrected block in a "
                    f"single ```{_FENCE_TAGS.get(language, '')} code block, and nothing else."
                ),
            ]
        )

    room = budget - len(system.content) - len(render(""))
    return [
        system,
        Message("user", render(skeleton_excerpt(component, language, budget=min(SKELETON_BUDGET, room)))),
    ]
