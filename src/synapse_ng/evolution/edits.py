"""SEARCH/REPLACE edits: a model's answer as changes to the parent block rather than a new block.

    has_edits(answer) -> bool
    apply_edits(answer, parent_block, harness=()) -> (block, None) | (None, error)

The format, anywhere in the answer, fenced or not::

    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE

Edits apply in order to the *parent block* only (never the harness): exact whole lines first, then any
exact substring, then a line-by-line match that ignores whitespace and blank lines (the replacement is
re-indented by the same offset). One SEARCH that matches nowhere fails the whole answer, and the error
quotes it, and says so when it quoted the fixed harness (`harness`: its parts) instead of the block:
a small model repairs a precise complaint, not a vague one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["apply_edits", "has_edits", "squash"]

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$")
_NO_DIVIDER = (
    "malformed edit: a SEARCH section must be followed by a line of ======= and then the REPLACE section"
)
_NO_END = "malformed edit: a REPLACE section must end with a line of >>>>>>> REPLACE"
_UNFINISHED = "malformed edit: the last edit is not finished (it needs ======= and >>>>>>> REPLACE)"


@dataclass(frozen=True)
class _Edit:
    search: list[str]
    replace: list[str]


def has_edits(answer: str) -> bool:
    """Whether the answer holds a SEARCH marker (then it is read as edits, and nothing else)."""
    return any(_SEARCH.match(line) for line in answer.split("\n"))


def squash(text: str) -> str:
    """The text without any whitespace: what "the same lines, spaced differently" compares."""
    return "".join(text.split())


def _parse_edits(text: str) -> tuple[list[_Edit], str | None]:
    edits: list[_Edit] = []
    state: str | None = None
    search: list[str] = []
    replace: list[str] = []
    for line in text.split("\n"):
        if state is None:
            if _SEARCH.match(line):
                state, search, replace = "search", [], []
        elif state == "search":
            if _DIVIDER.match(line):
                state = "replace"
            elif _SEARCH.match(line) or _REPLACE.match(line):
                return edits, _NO_DIVIDER
            else:
                search.append(line)
        elif state == "replace":
            if _REPLACE.match(line):
                edits.append(_Edit(_strip_fence_lines(search), _strip_fence_lines(replace)))
                state = None
            elif _SEARCH.match(line):
                return edits, _NO_END
            else:
                replace.append(line)
    if state is not None:
        return edits, _UNFINISHED
    return edits, None


def _strip_fence_lines(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and lines[0].strip().startswith(("```", "~~~")):
        lines.pop(0)
    while lines and lines[-1].strip().startswith(("```", "~~~")):
        lines.pop()
    return lines


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
    wanted = [(squash(line), line) for line in search if line.strip()]
    if not wanted:
        return None
    for k in range(len(lines)):
        if squash(lines[k]) != wanted[0][0]:
            continue
        j, w = k, 0
        while j < len(lines) and w < len(wanted):
            if not lines[j].strip():
                j += 1
                continue
            if squash(lines[j]) != wanted[w][0]:
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
        return [
            line[len(cut) :] if line.startswith(cut) else line.lstrip() if line.strip() else line
            for line in replace
        ]
    return replace


def _quote(lines: list[str], limit: int = 160) -> str:
    shown = "\n".join(line.rstrip() for line in lines if line.strip())[:limit]
    return repr(shown)


def apply_edits(
    answer: str, parent_block: str, harness: tuple[str, ...] = ()
) -> tuple[str | None, str | None]:
    """(the parent block with every edit of the answer applied, None), or (None, why not).
    harness: the skeleton's parts outside the block, to tell a model that it quoted the harness."""
    edits, problem = _parse_edits(answer)
    if problem:
        return None, problem
    if not edits:
        return None, "the answer has a SEARCH marker but no complete SEARCH/REPLACE edit"
    if not parent_block.strip():
        return None, "SEARCH/REPLACE edits need a parent block to apply to, and there is none"
    block = parent_block.replace("\r\n", "\n")
    failures = []
    for number, edit in enumerate(edits, 1):
        if not any(line.strip() for line in edit.search):
            failures.append(
                f"edit {number} has an empty SEARCH section (quote the lines of the block to replace)"
            )
            continue
        changed = _apply_edit(block, edit)
        if changed is None:
            squashed = squash("\n".join(edit.search))
            where = ""
            if squashed and any(squashed in squash(part) for part in harness):
                where = " (it is in the fixed harness, which cannot change; only the block can)"
            quoted = _quote(edit.search)
            failures.append(f"edit {number}: SEARCH text not found in the current block{where}: {quoted}")
            continue
        block = changed
    if failures:
        return None, "; ".join(failures) + ". Copy the SEARCH lines exactly from the current block."
    return block, None
