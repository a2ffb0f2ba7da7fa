"""Top-level items: the functions, types, constants and directives a Rust or C program is made of.

`top_level_items` splits code at depth 0 (a `}` that closes an item, a `;` that ends one, a C directive's
end of line), reading the tokens of `scan.tokenize` so that nothing inside a comment or a string is taken
for a boundary. Each `Item` knows its kind, the name it defines, the identifiers it mentions and, for
functions, its signature: what extraction needs to drop a copied harness or bring back a helper the
model left out, and what prompts need to show the block's signature. For WAT the items are the
`(func $name ...)` forms. It reads code as the tools do, leniently, and checks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import CodeLanguage
from .scan import tokenize
from .tokens import Token, as_language

__all__ = ["Item", "find_functions", "root_functions", "top_level_items"]


# Words that precede a C name without being one: types, qualifiers, and the keywords that take `(`.
_C_TYPE_WORDS = frozenset(
    {
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
    }
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
    language = as_language(language)
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


def _closer(tokens: list[Token], opener: int, open_: str, close: str) -> int:
    """Index of the token that closes the group opened at `opener` (len(tokens) when none does)."""
    depth = 0
    for j in range(opener, len(tokens)):
        if tokens[j].text == open_:
            depth += 1
        elif tokens[j].text == close:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


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
                i = _closer(tokens, j, "[", "]") + 1
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
    if (
        words
        and words[0] in ("struct", "union", "enum")
        and _first_brace(tokens) is not None
        and tokens[-1].text == ";"
    ):
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


def _wat_items(code: str) -> list[Item]:
    """The `(func $name ...)` forms, wherever they are; each with its leading `;;` comments."""
    tokens = [t for t in tokenize(code, CodeLanguage.WAT) if t.kind != "ws"]
    items: list[Item] = []
    for index, token in enumerate(tokens):
        if token.text != "(" or index + 2 >= len(tokens) or tokens[index + 1].text != "func":
            continue
        name_token = tokens[index + 2]
        name = name_token.text[1:] if name_token.text.startswith("$") else None
        j = _closer(tokens, index, "(", ")")
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


def root_functions(block: str, language: CodeLanguage) -> list[str]:
    """The functions of a block that no other function of the block calls (its entry points)."""
    functions = find_functions(block, language)
    names = [f.name for f in functions if f.name]
    called = {name for f in functions for name in names if name != f.name and name in f.idents}
    roots = [name for name in names if name not in called]
    return roots or names
