"""Many constant settings from one build: the tuner's fast path.

    slottable(block, language, literals) -> [Literal]   those a slot can replace
    slotted(block, language, literals) -> str           the block reading those constants from memory
    bake(block, language, literals, values) -> str      the block with those constants written in
    measure_settings_job({component, wasm, settings}) -> {scores}   in a worker process

A tune changes only constants, yet compiling each setting costs about a second. Here the parent's chosen
float constants are replaced by reads from a static array (`SYNAPSE_SLOTS`, behind a 16-byte marker
that the host finds in the module's memory), the block is compiled once, and each setting is written
into that array of a fresh instance and measured on the training workloads. The reads are volatile, so
the compiler cannot fold the initial values in and every setting really runs.

Nothing measured here is trusted or stored as a result: no correctness case runs on a slotted module.
The search bakes the best setting back into literals (`bake`), and that block is built, checked and
judged like any candidate before it can join the population or win. Only float constants are slotted
(an integer's type is the context's, which a slot cannot follow); a block whose slotted form does not
compile (a float in an f32 context, say) goes to the ordinary tuner. So does every WAT block: a WAT
block may hold only functions, so it has no static array of its own to read settings from (and the
harness's memory is the block's to use), and `slottable` finds nothing to slot in it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..components import CaseFailure, Split
from ..languages import Token, tokenize
from ..models import CodeLanguage
from ..wasm.sandbox import Sandbox
from .measure import load_component
from .tuning import Literal

SLOTS_NAME = "SYNAPSE_SLOTS"
# Two f64s no program writes by chance (the marker the host looks for), then the slots.
MARKER = (-1.2345678901234567e-300, 7.6543210987654321e300)
MARKER_BYTES = struct.pack("<2d", *MARKER)


def slottable(block: str, language: CodeLanguage, literals: Sequence[Literal]) -> list[Literal]:
    """The literals a slot can replace. A Rust `const` or `static` initialiser must be a constant, and a
    volatile read is not: a `const` inside a function becomes a `let` in the slotted block (`slotted`
    does it), one outside any function keeps its literal (the ordinary tuner still tunes it). None in
    WAT (or any language but Rust and C), whose block has nowhere to keep the slots: the ordinary tuner
    tunes its constants."""
    if language not in (CodeLanguage.RUST, CodeLanguage.C):
        return []
    if language is CodeLanguage.C:
        return list(literals)
    tokens = _code_tokens(block)  # once for every literal
    return [
        literal
        for literal in literals
        if _const_item(tokens, literal.start) is None or _in_function(tokens, literal.start)
    ]


def _code_tokens(block: str) -> list[Token]:
    return [t for t in tokenize(block, CodeLanguage.RUST) if t.kind not in ("ws", "comment")]


def _const_item(tokens: list[Token], offset: int) -> int | None:
    """The offset of the `const`/`static` keyword whose item (up to its `;`) holds `offset`, if any."""
    start = None
    for token in tokens:
        if token.start > offset:
            break
        if token.kind == "ident" and token.text in ("const", "static"):
            start = token.start
        elif token.text in (";", "{", "}"):
            start = None
    return start


def _in_function(tokens: list[Token], offset: int) -> bool:
    depth = 0
    for token in tokens:
        if token.start >= offset:
            break
        depth += token.text == "{"
        depth -= token.text == "}"
    return depth > 0


def slotted(block: str, language: CodeLanguage, literals: Sequence[Literal]) -> str:
    """The block with each of `literals` (floats of this block, `slottable`) read from slot i of
    SYNAPSE_SLOTS, whose initial values are the literals' own (so the slotted module starts as the
    parent)."""
    if not literals or any(not literal.is_float for literal in literals):
        raise ValueError("only float literals can be slotted")
    count = len(literals) + 2
    initial = ", ".join(repr(float(v)) for v in (*MARKER, *(float(literal.value) for literal in literals)))
    if language is CodeLanguage.RUST:
        declaration = f"static mut {SLOTS_NAME}: [f64; {count}] = [{initial}];\n"

        def read(slot: int) -> str:
            pointer = f"core::ptr::addr_of!({SLOTS_NAME}).cast::<f64>().add({slot + 2})"
            return f"(unsafe {{ core::ptr::read_volatile({pointer}) }})"

    elif language is CodeLanguage.C:
        declaration = f"static volatile double {SLOTS_NAME}[{count}] = {{{initial}}};\n"

        def read(slot: int) -> str:
            return f"({SLOTS_NAME}[{slot + 2}])"

    else:
        raise ValueError(f"no slots for {language.value}: slottable() finds no literal a slot can replace")
    edits = [(literal.start, literal.end, read(slot)) for slot, literal in enumerate(literals)]
    if language is CodeLanguage.RUST:  # a function's `const` read from a slot is a `let`
        tokens = _code_tokens(block)
        items = {_const_item(tokens, literal.start) for literal in literals}
        keywords = sorted(at for at in items if at is not None and block.startswith("const", at))
        edits += [(at, at + len("const"), "let") for at in keywords]
    out, cursor = [declaration], 0
    for start, end, text in sorted(edits):
        out += [block[cursor:start], text]
        cursor = end
    out.append(block[cursor:])
    return "".join(out)


def bake(block: str, literals: Sequence[Literal], texts: Sequence[str]) -> str:
    """The block with each literal's text replaced by the matching text (a setting written out)."""
    out, cursor = [], 0
    for literal, text in sorted(zip(literals, texts, strict=True), key=lambda pair: pair[0].start):
        out += [block[cursor : literal.start], text]
        cursor = literal.end
    out.append(block[cursor:])
    return "".join(out)


def measure_settings_job(job: dict) -> dict:
    """Inside a worker: for each setting and each training workload, a fresh instance with the setting
    written into its slots, then the workload; the aggregate objective per setting (None where the module
    trapped or gave an invalid answer)."""
    component = load_component(job["component"])
    sandbox = Sandbox(job["wasm"], component.limits)
    workloads = component.workloads(Split.TRAIN)
    first = sandbox.instantiate()
    if first.startup.trap is not None:
        return {"error": f"the slotted module does not start: {first.startup.trap}"}
    at = first.memory.read_bytes(0, first.memory.size_bytes).find(MARKER_BYTES)
    if at < 0 or at % 8:
        return {"error": "the slots' marker is not in the module's memory"}
    objective = component.objective
    scores: list[float | None] = []
    for values in job["settings"]:
        setting = struct.pack(f"<{len(values)}d", *values)
        measured: list[float] = []
        try:
            for workload in workloads:
                instance = sandbox.instantiate()
                instance.memory.write_bytes(at + len(MARKER_BYTES), setting)
                measured.append(component.measure(instance, workload)[objective.metric])
        except CaseFailure:
            scores.append(None)
            continue
        scores.append(objective.aggregate(measured))
    return {"scores": scores}
