"""Static checks on a candidate's WebAssembly bytes, before anything is compiled or instantiated.

``inspect_wasm(data, policy)`` reads the module's sections (``sections.py``, with the bounds-checked
reader of ``binary.py``), asks wasmtime's validator whether the bytes are a valid module, and holds
what it read to a :class:`WasmPolicy` (the rules and their wording are in ``checks.py``). It never
raises on bad input: every problem, however malformed the bytes, becomes one sentence in
``WasmReport.reasons`` that says what is wrong and what to do about it.

Decisions worth knowing:

* Nothing is compiled: the only wasmtime call is ``Module.validate`` (no code generation). So the
  report's imports and exports come from the section walk, not from wasmtime's ``Module.imports`` /
  ``exports``, which exist only on a compiled module. Compiling here would not save the sandbox its
  own compile either: the sandbox's engine has another configuration (fuel, epochs, no threads), a
  module belongs to the engine that compiled it, and evaluation runs the sandbox in a worker process.
  And the walk must read the types anyway: wasmtime-py aborts the process on GC reference types.
* When the 8-byte header is not a core-module header, the validator is not asked (it would only
  repeat the header complaint) and nothing else is checked.
* When the validator rejects the bytes, its message is the reason, and the section walk's own
  complaint about the same bytes (if any) is not repeated. When the validator accepts bytes that the
  walk cannot read (an unusual proposal's encoding), that is a reason: fail closed.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import wasmtime

from .checks import header_problem, layout_problems, size_problem
from .policy import WasmPolicy, signature_text
from .sections import FUNCTION, KIND_NAMES, Layout, MemoryLimits, parse_sections

__all__ = ["ModuleInfo", "WasmReport", "inspect_wasm"]


@dataclass(frozen=True)
class ModuleInfo:
    """What was read from the bytes, for reports. Counts are None when their section was not reached."""

    size: int
    sha256: str
    imports: tuple[str, ...] = ()  # "module.name"
    exports: tuple[
        str, ...
    ] = ()  # "name:params->results", or "name (memory)" / "(table)" / "(global)" / "(tag)"
    functions: int | None = None  # defined functions (the function section's count)
    memories: tuple[MemoryLimits, ...] = ()  # imported first, then defined
    tables: int | None = None  # imported and defined
    globals: int | None = None  # defined globals (the global section's count)
    has_start: bool | None = None
    data_segments: int | None = None


@dataclass(frozen=True)
class WasmReport:
    ok: bool
    reasons: tuple[str, ...]  # every reason, each a sentence that says what is wrong and what to do
    info: ModuleInfo


def inspect_wasm(data: bytes, policy: WasmPolicy = WasmPolicy()) -> WasmReport:
    """Check a module's bytes against a policy without compiling or running it; report every problem."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"inspect_wasm needs the module's bytes, not {type(data).__name__}")
    size = len(data)
    digest = hashlib.sha256(data).hexdigest()
    reasons: list[str] = []

    if size == 0:
        reasons.append("empty file, expected a WebAssembly module: check that the build produced output")
        return WasmReport(False, tuple(reasons), ModuleInfo(size, digest))
    too_big = size_problem(size, policy)
    if too_big is not None:
        reasons.append(too_big)
    header = header_problem(data)
    if header is not None:
        reasons.append(header)
        return WasmReport(False, tuple(reasons), ModuleInfo(size, digest))

    invalid = _validate(data)
    layout = parse_sections(data)
    if invalid is not None:
        reasons.append(invalid)
    elif layout.error is not None:
        reasons.append(
            f"{layout.error}; this checker reads only plain core WebAssembly: "
            "rebuild without experimental features"
        )
    complete = layout.error is None
    reasons += layout_problems(layout, policy, complete)
    return WasmReport(not reasons, tuple(reasons), _info(size, digest, layout, complete))


@functools.lru_cache(maxsize=1)
def _engine() -> wasmtime.Engine:
    """One engine for validation, made on first use (an Engine is costly; validation is shared-safe)."""
    return wasmtime.Engine()


def _validate(data: bytes) -> str | None:
    try:
        wasmtime.Module.validate(_engine(), data)
    except wasmtime.WasmtimeError as error:
        message = " ".join(str(error).split())  # wasmtime's messages can span lines
        return (
            f"WebAssembly validation failed: {message}; the module is malformed or uses an unsupported "
            "feature: rebuild it with a standard toolchain"
        )
    return None


def _info(size: int, digest: str, layout: Layout, complete: bool) -> ModuleInfo:
    def counted(section_id: int, value):
        # A count is known when the module was read to the end or when its section was read.
        return value if complete or section_id in layout.seen else None

    return ModuleInfo(
        size=size,
        sha256=digest,
        imports=tuple(f"{module}.{name}" for module, name, _ in layout.imports),
        exports=tuple(_export_text(layout, name, kind, index) for name, kind, index in layout.exports),
        functions=counted(3, layout.functions or 0),  # section ids: 3 function, 4 table, 6 global, ...
        memories=tuple(limits for limits, _ in layout.memories),
        tables=counted(4, len(layout.tables)),
        globals=counted(6, layout.globals or 0),
        has_start=counted(8, layout.has_start),  # ... 8 start, 11 data
        data_segments=counted(11, layout.data_segments or 0),
    )


def _export_text(layout: Layout, name: str, kind: int, index: int) -> str:
    signature = layout.signature(index) if kind == FUNCTION else None
    if signature is not None:
        return f"{name}:{signature_text(*signature)}"
    return f"{name} ({KIND_NAMES[kind]})"
