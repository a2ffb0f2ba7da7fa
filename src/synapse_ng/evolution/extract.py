"""From a model's answer to a candidate EVOLVE block.

    extract_candidate(answer, parent_block, language, component) -> Extraction
    required_functions(component, language) -> tuple of names

What `extract_candidate` copes with, in this order:

1. CRLF / CR line endings, `<think>...</think>` reasoning sections, an empty answer (kind "none").
2. SEARCH/REPLACE edits anywhere in the answer (see `edits.py`), applied to the parent block only.
   Kind "edits".
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
   left is the block. Kind "program", also when a block merely repeats some harness items. This needs
   the `component` (None for free-form code: then the code is returned as it is).
6. A `main` function (a usage example) is dropped unless the parent block has one. Helpers that the
   parent block defines and the answer calls but leaves out ("the rest is unchanged") are copied
   from the parent, ahead of the answer's code (C needs them declared first).
7. When the required function is known (from the component, or else the parent block: the functions
   of the block that nothing else in the block calls), an answer that does not define it is refused
   with an error naming it, rather than costing a compile.

The "required function" of a component is a function its baseline block defines and its harness calls
(`priority`, `tally_votes`, `choose_peers`); `required_functions(component, language)` computes it.
Fences are found by markdown-it-py (CommonMark: an unclosed fence runs to the end of the answer, as a
truncated answer needs); the code is read with `synapse_ng.languages`, so nothing inside a comment or a
string is mistaken for code.
"""

from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import dataclass

from markdown_it import MarkdownIt

from ..components.base import EVOLVE_END, EVOLVE_START, Component, split_skeleton
from ..languages import (
    as_language,
    find_functions,
    normalize_source,
    root_functions,
    tokenize,
    top_level_items,
)
from ..models import CodeLanguage
from .edits import apply_edits, has_edits, squash

__all__ = ["Extraction", "extract_candidate", "required_functions"]


@dataclass(frozen=True)
class Extraction:
    """block: the candidate EVOLVE block (None when there is none); kind: "block", "edits", "program"
    or "none"; error: why there is no block (or None)."""

    block: str | None
    kind: str
    error: str | None = None


# ================================================================================ the component side


@functools.lru_cache(maxsize=64)
def required_functions(component: Component, language: CodeLanguage) -> tuple[str, ...]:
    """Functions the component's baseline block defines and its harness calls: what a block must define."""
    language = as_language(language)
    head, block, tail = split_skeleton(component.skeleton(language))
    harness_idents = set()
    for part in (head, tail):
        for token in tokenize(part, language):
            if token.kind in ("ident", "number") or token.text.startswith("$"):
                harness_idents.add(token.text.lstrip("$"))
    defined = [f.name for f in find_functions(block, language)]
    required = tuple(name for name in defined if name in harness_idents)
    return required or tuple(root_functions(block, language))


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


# ============================================================================================ fences

_MARKDOWN = MarkdownIt("commonmark")
_LANGUAGE_TAGS = {
    CodeLanguage.RUST: {"rust", "rs"},
    CodeLanguage.C: {"c", "h"},
    CodeLanguage.WAT: {"wat", "wast", "wasm", "webassembly"},
    CodeLanguage.ASSEMBLYSCRIPT: {"assemblyscript", "as", "ts", "typescript"},
}


@dataclass(frozen=True)
class _Fence:
    tag: str  # the first word of the info string, lower case: "rust" for "Rust", "rust,ignore", "{.rust}"
    code: str


def _fences(text: str) -> list[_Fence]:
    """Fenced code blocks in order (in list items too); an unclosed last fence runs to the end."""
    fences = []
    for token in _MARKDOWN.parse(text):
        if token.type == "fence":
            words = [w for w in re.split(r"[\s,{}.=]+", token.info.lower()) if w]
            fences.append(_Fence(words[0] if words else "", textwrap.dedent(token.content)))
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
        rf"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|unsafe|async|extern\s+\"[^\"]*\")\s+)*fn\s+{ident}\b",
        re.MULTILINE,
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


def _marked(code: str) -> str:
    """The code between the EVOLVE markers, or all of it when there are none."""
    between = _between_markers(code)
    return between[0] if between is not None else code


def _has_code(text: str) -> bool:
    return bool(text.strip()) and any(
        line.strip() and not line.strip().startswith(("//", "/*", "*", ";;")) for line in text.split("\n")
    )


def _defines(code: str, language: CodeLanguage, required: tuple[str, ...]) -> bool:
    if not required:
        return bool(find_functions(code, language))
    defined = {f.name for f in find_functions(code, language)}
    return set(required) <= defined


def _strip_harness(
    code: str, language: CodeLanguage, component: Component, required: tuple[str, ...]
) -> tuple[str, bool]:
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
    harness_text = squash(head + tail)
    parts = []
    for item in keep:
        comments = [
            token.text
            for token in tokenize(code[item.start : item.code_start], language)
            if token.kind == "comment" and squash(token.text) not in harness_text
        ]
        parts.append("\n".join(comments + [code[item.code_start : item.end]]))
    return "\n\n".join(parts), True


def _complete_from_parent(
    block: str, parent_block: str, language: CodeLanguage, required: tuple[str, ...]
) -> str:
    """Prepend the parent's helper items (functions, types, statics, constants) that the answer uses but
    does not define: small models often write only the function they changed."""
    if not parent_block.strip() or language is CodeLanguage.WAT:
        return block
    parent_items = [
        item
        for item in top_level_items(parent_block, language)
        if item.name and item.kind not in ("use", "directive", "impl")
    ]
    block_items = top_level_items(block, language)
    defined = {item.name for item in block_items if item.name}
    wanted: set[str] = set()
    frontier = set().union(*(item.idents for item in block_items)) if block_items else set()
    while True:
        new = {
            item.name
            for item in parent_items
            if item.name in frontier
            and item.name not in defined
            and item.name not in wanted
            and item.name not in required
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

        defining = [f for f in fences if _defines(_marked(f.code), language, required)]
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
    answer: str, parent_block: str, language: CodeLanguage | str, component: Component | None
) -> Extraction:
    """The candidate block in a model's answer (see the module docstring for every case handled).

    parent_block: the block the model was shown (SEARCH/REPLACE edits apply to it; its entry-point
    functions are what the answer must define when there is no component; its helpers fill in what the
    answer leaves out); may be "" for free-form code. component: the component the block is for, for
    its harness and required functions; None for free-form code."""
    language = as_language(language)
    text = _THINK.sub("", (answer or "").replace("\r\n", "\n").replace("\r", "\n"))
    parent_block = (parent_block or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return Extraction(None, "none", "the answer is empty")
    if component is not None and language in component.languages:
        required = required_functions(component, language)
    else:
        component = None
        required = tuple(root_functions(parent_block, language)) if parent_block.strip() else ()
    if has_edits(text):
        harness = split_skeleton(component.skeleton(language))[::2] if component is not None else ()
        block, error = apply_edits(text, parent_block, harness)
        return Extraction(None, "edits", error) if block is None else Extraction(_tidy(block), "edits", None)
    code = _pick_code(text, language, required, parent_block)
    if code is None or not code.strip():
        wanted = f" defining {_describe(required)}" if required else ""
        error = (
            f"no {language.value} code{wanted} in the answer; reply with the block in one fenced code block"
        )
        return Extraction(None, "none", error)
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
            error = (
                f"the answer does not define {_describe(tuple(missing))}; "
                "the block must define it with the same signature"
            )
            return Extraction(None, "none", error)
    return Extraction(block, kind, None)


def _describe(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)
