"""The cheap operator: re-tune the numeric constants of a good block, no language model involved.

    numeric_literals(block, language) -> [Literal(start, end, text, value, is_float)]
    retune(block, language, rng, count=None, scale=2.0) -> str | None
    can_retune(block, language) -> bool

`numeric_literals` finds the number tokens of a block with the language's own lexer (`languages.tokenize`),
so a digit inside a comment, a string, a char literal or an identifier (`x1`, `f64`, `u32`) is never a
literal. Handled forms: Rust `1.0f64`, `3u32`, `0x1F`, `0b101`, `0o17`, `1e-3`, `2.5E+3_f32`, `1_000`
(a tuple field such as `pair.0` is not a literal, and nothing inside `#[...]` attributes is); C `1.5f`,
`10UL`, `0x1Fu`, `017` (octal), `.5`, `1e-3` (in directives only `#define` values count); WAT only the
operand of `i32.const` / `i64.const` / `f32.const` / `f64.const`, sign included (the instruction that
takes the constant says what it is: the enclosing form's head when folded, else the next one). `value`
is an int or a float; hex floats, `nan` and `inf` are left out.

`retune` perturbs `count` literals (1..3, drawn from `rng` when not given), chosen without replacement
among the *tunable* ones, floats three times as likely as integers:

- a float is multiplied by a factor drawn log-uniformly in [0.5, 2] (in [1/scale, scale] when a wider
  `scale` is asked for) and, one time in four, also gets
  a small Gaussian nudge (5 % of its value); it keeps a decimal point (or its exponent form), its
  suffix and its sign, and is written with four significant digits;
- an integer moves by 1 up to 25 % of its value (times log2(scale); at least 1), up or down, never
  crossing to 0 or to the other sign; it stays a decimal integer with its suffix and digit grouping
  (`1_000` -> `1_250`).

Not tunable (left as they are), because changing them changes what the program *is*, not how it
weighs things: zeros (0, 0.0: loop starts, initial values, clamps), the integer 1 (`n - 1`, `i + 1`),
non-decimal integers (hex/octal/binary: bit masks and hash constants), integers of 2^31 and beyond (hash
and generator constants written in decimal), match and `case` patterns (`0 => ...`, `2 | 3 =>`), indices
and array lengths (`a[3]`, `[0.0; 64]`), the integer operands of bit operations, shifts and `%` (a
generator's `z >> 30`, a hash's `h % 7`), and the arguments of wrapping arithmetic, rotations and pointer
offsets (`wrapping_mul(31)`, `rotate_left(5)`, `ptr.add(8)`): a different random stream or hash is luck,
not a better rule. `keep` names more literals to leave alone (the component's interface codes, such as
raft's outcome `2`, and the tuner's own measurements: a literal whose every change broke the program is
structure). `retune` returns None when no literal is tunable, so the caller falls back to the model.
Everything is drawn from `rng`, in a fixed order: the same seed gives the same block.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Collection
from dataclasses import dataclass

from ..languages import as_language, tokenize
from ..models import CodeLanguage

__all__ = ["Literal", "can_retune", "float_setting", "numeric_literals", "retune", "tunable_literals"]

FLOAT_WEIGHT = 3
NOISE_CHANCE = 0.25
NOISE_SCALE = 0.05
INT_SPREAD = 0.25
SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class Literal:
    start: int  # offset in the block
    end: int
    text: str  # exactly as written, suffix included
    value: int | float
    is_float: bool
    structural: bool = False  # its place says it is structure (a pattern, an index, a shift...), not a knob


# Where an integer is structure: beside these operators (bit operations, shifts, remainders), as the
# argument of these methods (wrapping arithmetic, rotations, pointer offsets), and from this size on.
_BIT_OPERATORS = frozenset({"<<", ">>", "<<=", ">>=", "&", "|", "^", "&=", "|=", "^=", "%", "%="})
_STRUCTURAL_METHODS = frozenset(
    {
        "wrapping_mul",
        "wrapping_add",
        "wrapping_sub",
        "wrapping_shl",
        "wrapping_shr",
        "rotate_left",
        "rotate_right",
        "add",
        "sub",
        "offset",
        "byte_add",
        "byte_offset",
    }
)
_HASH_SIZE = 1 << 31
# An identifier before `[` makes it an index (`a[3]`), unless it is one of these keywords (`in [1.0, 2.0]`).
_NOT_INDEXED = frozenset({"return", "in", "break", "else", "match", "if", "while", "mut", "let", "as"})


# ------------------------------------------------------------------------------------------ parsing

_RUST_DEC = re.compile(
    r"(?P<body>[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*[0-9][0-9_]*)?)(?P<suffix>_*(?:[iu](?:8|16|32|64|128|size)|f32|f64))?$"
)
_RUST_RADIX = re.compile(
    r"0(?P<base>[xob])(?P<digits>[0-9a-fA-F_]*?)(?P<suffix>_*[iu](?:8|16|32|64|128|size))?$"
)
_C_FLOAT = re.compile(r"(?P<body>(?:[0-9]*\.[0-9]*|[0-9]+)(?:[eE][+-]?[0-9]+)?)(?P<suffix>[fFlL]?)$")
_C_INT = re.compile(r"(?P<body>0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)(?P<suffix>[uU]?[lL]{0,2}|[lL]{1,2}[uU])$")
_WAT_INT = re.compile(r"(?P<sign>[+-]?)(?P<body>0x[0-9a-fA-F_]+|[0-9][0-9_]*)$")
_WAT_FLOAT = re.compile(r"(?P<sign>[+-]?)(?P<body>[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)$")


@dataclass(frozen=True)
class _Parsed:
    value: int | float
    is_float: bool
    radix: int
    sign: str  # "-" or "+" written before the digits (WAT), else ""
    body: str  # the digits (and point/exponent) as written
    suffix: str


def _parse(text: str, language: CodeLanguage) -> _Parsed | None:
    if language is CodeLanguage.C:
        m = _C_INT.match(text)
        if m and not ("." in text or (not text.lower().startswith("0x") and "e" in text.lower())):
            body = m.group("body")
            lower = body.lower()
            if lower.startswith("0x"):
                return _Parsed(int(body, 0), False, 16, "", body, m.group("suffix"))
            if lower.startswith("0b"):
                return _Parsed(int(body, 0), False, 2, "", body, m.group("suffix"))
            if len(body) > 1 and body.startswith("0"):
                try:
                    return _Parsed(int(body, 8), False, 8, "", body, m.group("suffix"))
                except ValueError:
                    return None
            return _Parsed(int(body), False, 10, "", body, m.group("suffix"))
        m = _C_FLOAT.match(text)
        if m and ("." in m.group("body") or "e" in m.group("body").lower()):
            try:
                return _Parsed(float(m.group("body")), True, 10, "", m.group("body"), m.group("suffix"))
            except ValueError:
                return None
        return None
    if language is CodeLanguage.WAT:
        m = _WAT_INT.match(text)
        if m:
            body = m.group("body")
            value: int | float = int(body.replace("_", ""), 16 if body.startswith("0x") else 10)
            return _Parsed(
                -value if m.group("sign") == "-" else value,
                False,
                16 if body.startswith("0x") else 10,
                m.group("sign"),
                body,
                "",
            )
        m = _WAT_FLOAT.match(text)
        if m:
            value = float(m.group("body").replace("_", ""))
            return _Parsed(
                -value if m.group("sign") == "-" else value, True, 10, m.group("sign"), m.group("body"), ""
            )
        return None
    # Rust (and the Rust-like default)
    m = _RUST_RADIX.match(text)
    if m:
        base = {"x": 16, "o": 8, "b": 2}[m.group("base")]
        digits = m.group("digits").replace("_", "")
        try:
            return _Parsed(
                int(digits, base),
                False,
                base,
                "",
                text[: m.start("suffix")] if m.group("suffix") else text,
                m.group("suffix") or "",
            )
        except ValueError:
            return None
    m = _RUST_DEC.match(text)
    if not m:
        return None
    body, suffix = m.group("body"), m.group("suffix") or ""
    is_float = "." in body or "e" in body.lower() or suffix.lstrip("_") in ("f32", "f64")
    clean = body.replace("_", "")
    try:
        value = float(clean) if is_float else int(clean)
    except ValueError:
        return None
    return _Parsed(value, is_float, 10, "", body, suffix)


def _literals(block: str, language: CodeLanguage) -> list[tuple[Literal, _Parsed]]:
    tokens = [t for t in tokenize(block, language) if t.kind not in ("ws", "comment")]
    found = []
    attribute_depth = 0  # Rust: inside #[...]
    directive: str | None = None  # C: the directive the tokens belong to
    brackets: list[bool] = []  # Rust and C: for each open `[`, whether it indexes (`a[3]`) or lists
    forms: list[int] = []  # WAT: for each open `(`, the index of the token after it (its head)
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else None
        if language is CodeLanguage.WAT and token.kind == "punct":
            if token.text == "(":
                forms.append(index + 1)
            elif forms:
                forms.pop()
        if language is not CodeLanguage.WAT and token.kind == "punct":
            if token.text == "[":
                brackets.append(
                    previous is not None
                    and (previous.text in (")", "]") or previous.kind == "ident")
                    and previous.text not in _NOT_INDEXED
                )
            elif token.text == "]" and brackets:
                brackets.pop()
        if language is CodeLanguage.C:
            if token.kind == "eol":
                directive = None
                continue
            if (
                token.text == "#"
                and directive is None
                and index + 1 < len(tokens)
                and _starts_line(block, token.start)
            ):
                directive = tokens[index + 1].text
                continue
        elif language is not CodeLanguage.WAT:
            if (
                token.text == "["
                and previous is not None
                and (
                    previous.text == "#"
                    or (previous.text == "!" and index >= 2 and tokens[index - 2].text == "#")
                )
            ):
                attribute_depth = 1
                continue
            if attribute_depth:
                attribute_depth += token.text == "["
                attribute_depth -= token.text == "]"
                continue
        if token.kind != "number":
            continue
        if language is CodeLanguage.C and directive is not None and directive != "define":
            continue
        if language is CodeLanguage.WAT and not (previous is not None and previous.text.endswith(".const")):
            continue
        if (
            language not in (CodeLanguage.C, CodeLanguage.WAT)
            and previous is not None
            and previous.text == "."
        ):
            continue  # a tuple field (`pair.0`), not a constant
        parsed = _parse(token.text, language)
        if parsed is None:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if language is CodeLanguage.WAT:
            # The instruction that takes the constant: the enclosing form's head when it is folded,
            # `(i64.shr_u (local.get $z) (i64.const 30))`, else the next one, `i64.const 30 i64.shr_u`.
            folded = index >= 2 and tokens[index - 2].text == "("
            user = tokens[forms[-2]] if folded and len(forms) >= 2 else (None if folded else following)
            structural = _wat_structural(parsed, user.text if user is not None else "")
        else:
            structural = _structural(
                parsed, tokens[index - 2] if index >= 2 else None, previous, following, brackets
            )
        literal = Literal(token.start, token.end, token.text, parsed.value, parsed.is_float, structural)
        found.append((literal, parsed))
    return found


def _structural(parsed: _Parsed, before_previous, previous, following, brackets: list[bool]) -> bool:
    """Whether a literal's place in Rust or C says it is structure rather than a tunable constant."""
    prev_text = previous.text if previous is not None else ""
    next_text = following.text if following is not None else ""
    if next_text in ("=>", "|") or prev_text == "case":  # a pattern: `0 =>`, `2 | 3 =>`, `case 3:`
        return True
    if brackets and (brackets[-1] or prev_text == ";"):  # an index `a[3]`, a length `[0.0; 64]`
        return True
    if parsed.is_float:
        return False
    if prev_text in _BIT_OPERATORS or next_text in _BIT_OPERATORS or abs(parsed.value) >= _HASH_SIZE:
        return True
    method = before_previous.text if before_previous is not None else ""
    return prev_text == "(" and method in _STRUCTURAL_METHODS


# WAT instructions (after the `i32.` / `i64.` type) whose integer operand is structure: bit operations,
# shifts, rotations, remainders; and an address given to a load or a store.
_WAT_BIT_OPERATIONS = frozenset(
    {"and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr", "rem_s", "rem_u"}
)


def _wat_structural(parsed: _Parsed, instruction: str) -> bool:
    """Whether a WAT constant is structure, by the instruction that takes it (as `_structural` for Rust
    and C): the operand of a bit operation, a shift or a remainder, an address, a hash-sized integer."""
    if parsed.is_float:
        return False
    operation = instruction.rpartition(".")[2]
    return (
        abs(parsed.value) >= _HASH_SIZE
        or operation in _WAT_BIT_OPERATIONS
        or "load" in operation
        or "store" in operation
    )


def _starts_line(text: str, offset: int) -> bool:
    line_start = text.rfind("\n", 0, offset) + 1
    return not text[line_start:offset].strip()


def numeric_literals(block: str, language: CodeLanguage | str) -> list[Literal]:
    """The numeric literals of a block, in order (see the module docstring for what counts)."""
    return [literal for literal, _ in _literals(block, as_language(language))]


def changed_literals(before: str, after: str, language: CodeLanguage | str) -> list[int] | None:
    """Indices of the literals of `before` whose text `after` changed (a tune of it), or None when the
    two blocks do not have the same number of literals (not a tune: nothing to compare)."""
    old, new = numeric_literals(before, language), numeric_literals(after, language)
    if len(old) != len(new):
        return None
    return [index for index, (a, b) in enumerate(zip(old, new, strict=True)) if a.text != b.text]


# ---------------------------------------------------------------------------------------- retuning


def _tunable(parsed: _Parsed) -> bool:
    if parsed.value == 0:
        return False
    if parsed.is_float:
        return math.isfinite(parsed.value)
    return parsed.radix == 10 and abs(parsed.value) != 1


def _format_float(magnitude: float, parsed: _Parsed) -> str:
    exponent_form = "e" in parsed.body.lower()
    if exponent_form:
        mantissa, exponent = f"{magnitude:.{SIGNIFICANT_DIGITS - 1}e}".split("e")
        mantissa = mantissa.rstrip("0")
        mantissa = mantissa + "0" if mantissa.endswith(".") else mantissa
        e = "E" if "E" in parsed.body else "e"
        text = f"{mantissa}{e}{int(exponent)}"
    else:
        decimals = max(1, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(magnitude)))
        text = f"{magnitude:.{decimals}f}"
        if "." in text:
            text = text.rstrip("0")
            text = text + "0" if text.endswith(".") else text
        else:
            text += ".0"
    return parsed.sign + text + parsed.suffix


def _format_int(magnitude: int, parsed: _Parsed) -> str:
    digits = f"{magnitude:_}" if "_" in parsed.body else str(magnitude)
    return parsed.sign + digits + parsed.suffix


def _perturb(literal: Literal, parsed: _Parsed, rng: random.Random, scale: float) -> str:
    magnitude = abs(parsed.value)
    if parsed.is_float:
        for _ in range(8):
            factor = math.exp(rng.uniform(-math.log(scale), math.log(scale)))
            new = magnitude * factor
            if rng.random() < NOISE_CHANCE:
                nudged = new + rng.gauss(0.0, NOISE_SCALE * magnitude)
                new = nudged if nudged > 0 else new
            text = _format_float(new, parsed)
            if text != literal.text and float(f"{new:.{SIGNIFICANT_DIGITS - 1}e}") != magnitude:
                return text
        return _format_float(magnitude * 1.5, parsed)
    assert isinstance(magnitude, int)  # not is_float: _parse read an integer
    spread = max(1, round(magnitude * INT_SPREAD * math.log2(scale)))
    delta = rng.randint(1, spread)
    if rng.random() < 0.5 and magnitude - delta >= 1:
        new_int = magnitude - delta
    else:
        new_int = magnitude + delta
    return _format_int(new_int, parsed)


def _tunable_pairs(
    block: str, language: CodeLanguage, keep: Collection[int] = ()
) -> list[tuple[Literal, _Parsed]]:
    return [
        (literal, parsed)
        for literal, parsed in _literals(block, language)
        if _tunable(parsed) and not literal.structural and literal.start not in keep
    ]


def tunable_literals(block: str, language: CodeLanguage | str, keep: Collection[int] = ()) -> list[Literal]:
    """The literals `retune` may change: tunable values in tunable places, none whose start is in `keep`."""
    return [literal for literal, _ in _tunable_pairs(block, as_language(language), keep)]


def can_retune(block: str, language: CodeLanguage | str, keep: Collection[int] = ()) -> bool:
    """Whether `retune` has a constant to change in this block."""
    return bool(_tunable_pairs(block, as_language(language), keep))


def retune(
    block: str,
    language: CodeLanguage | str,
    rng: random.Random,
    count: int | None = None,
    scale: float = 2.0,
    keep: Collection[int] = (),
) -> str | None:
    """The block with 1..3 of its tunable numeric literals perturbed (nothing else changes), or None
    when it has none. `count` (default: drawn from 1..3) is capped at the number of tunable literals.
    `scale` (> 1) bounds a float's factor to [1/scale, scale] and stretches an integer's step by log2(scale):
    the search sometimes takes a wide jump, since a model's first guess at a threshold or a penalty can be
    off by an order of magnitude. `keep`: start offsets of literals to leave as they are."""
    if not scale > 1.0:
        raise ValueError(f"scale must be > 1, not {scale!r}")
    language = as_language(language)
    candidates = _tunable_pairs(block, language, keep)
    if not candidates:
        return None
    if count is None:
        count = rng.randint(1, 3)
    count = max(1, min(int(count), len(candidates)))
    pool = list(candidates)
    chosen = []
    for _ in range(count):
        weights = [FLOAT_WEIGHT if parsed.is_float else 1 for _, parsed in pool]
        pick = rng.choices(range(len(pool)), weights=weights)[0]
        chosen.append(pool.pop(pick))
    replacements = sorted(
        ((literal, _perturb(literal, parsed, rng, scale)) for literal, parsed in chosen),
        key=lambda pair: pair[0].start,
    )
    out, cursor = [], 0
    for literal, text in replacements:
        out.append(block[cursor : literal.start])
        out.append(text)
        cursor = literal.end
    out.append(block[cursor:])
    return "".join(out)


def float_setting(
    block: str,
    language: CodeLanguage | str,
    rng: random.Random,
    count: int | None = None,
    scale: float = 2.0,
    keep: Collection[int] = (),
) -> tuple[list[Literal], list[str]] | None:
    """A new setting of the block's tunable float constants, as `retune` would draw it: (those literals,
    the text of each in the setting: 1..3 of them perturbed, the others as written), or None when the
    block has no tunable float. The tuner's fast path measures such settings without compiling them
    (evolution.slots)."""
    if not scale > 1.0:
        raise ValueError(f"scale must be > 1, not {scale!r}")
    language = as_language(language)
    floats = [
        (literal, parsed) for literal, parsed in _tunable_pairs(block, language, keep) if parsed.is_float
    ]
    if not floats:
        return None
    count = max(1, min(int(count if count is not None else rng.randint(1, 3)), len(floats)))
    chosen = set(rng.sample(range(len(floats)), count))
    texts = [
        _perturb(literal, parsed, rng, scale) if index in chosen else literal.text
        for index, (literal, parsed) in enumerate(floats)
    ]
    return [literal for literal, _ in floats], texts


def literal_value(text: str, language: CodeLanguage | str) -> float:
    """The value a float literal's text stands for (suffix and digit grouping allowed)."""
    parsed = _parse(text, as_language(language))
    if parsed is None or not parsed.is_float:
        raise ValueError(f"not a float literal: {text!r}")
    return -float(parsed.value) if parsed.sign == "-" and parsed.value > 0 else float(parsed.value)
