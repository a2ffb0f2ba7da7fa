"""The static checks' rules, each worded as the reason a model reads to fix its program.

Every rule compares what ``sections.py`` read with a :class:`WasmPolicy` and appends one sentence per
problem: what is wrong and what to do about it, with a WAT and a Rust example where one helps. All
problems are reported, not only the first, because the reasons are fed back to the model that wrote
the program. Names read from the module are untrusted text: they are shown escaped and shortened.

Decisions worth knowing:

* When the sections could not all be read (``complete`` is false), rules that need the whole module
  to say something is *absent* (a required export, the one memory) are skipped; rules on what *was*
  read still apply.
* Memories and tables: imported ones count towards the limits like defined ones. Functions and
  globals: only the defined ones count; imported ones are already bounded by the import allowlist.
* Tables: the initial size must be within ``max_table_elements``; a declared maximum must be too;
  a table without a maximum is accepted (growth is for the run-time store limits to bound), which
  is what compilers emit. Memories, by contrast, must declare a maximum.
* Import names are matched as the string ``"module.name"``. That is ambiguous when a name contains
  a dot (``"a.b" + "c"`` and ``"a" + "b.c"`` are both ``"a.b.c"``); an allowlist entry admits both.
"""

from __future__ import annotations

from ..text import clip
from .binary import HEADER, WASM_MAGIC, WASM_VERSION
from .policy import PAGE_BYTES, ExportSpec, WasmPolicy, signature_text
from .sections import FUNCTION, KIND_NAMES, Layout, Origin

__all__ = ["header_problem", "layout_problems", "size_problem"]

_MAX_MEMORY_HINT = (
    "(memory 1 16) in WAT, -C link-arg=--max-memory=N for Rust or -Wl,--max-memory=N for C "
    "(N in bytes, a multiple of 65536)"
)


def layout_problems(p: Layout, policy: WasmPolicy, complete: bool) -> list[str]:
    """Every rule on what the section walk read, in the order the reasons are reported."""
    reasons: list[str] = []
    _check_imports(p, policy, reasons)
    _check_exports(p, policy, complete, reasons)
    _check_memories(p, policy, complete, reasons)
    _check_start(p, reasons)
    _check_tables(p, policy, reasons)
    _check_counts(p, policy, reasons)
    return reasons


def size_problem(size: int, policy: WasmPolicy) -> str | None:
    """Why a module of `size` bytes is too big for the policy; None when it is not."""
    if size <= policy.max_bytes:
        return None
    return (
        f"module is {_bytes(size)}, above the cap of {_bytes(policy.max_bytes)}: make it smaller "
        "(optimize for size, strip debug info and names, shrink static data)"
    )


def header_problem(data: bytes) -> str | None:
    """Why the first 8 bytes are not a core module's header; None when they are. `data` is not empty."""
    too_short = (
        f"not a WebAssembly module: the file is only {len(data)} bytes, shorter than the 8-byte header; "
        "pass the complete .wasm binary"
    )
    if len(data) < len(HEADER) and HEADER.startswith(data):
        return too_short
    if data[:4] != WASM_MAGIC:
        stripped = data.lstrip()[:7]
        if stripped.startswith(b"(module") or stripped.startswith(b"(;") or stripped.startswith(b";;"):
            return (
                "not a WebAssembly module: this looks like WAT text; "
                "compile it to the binary format (wat2wasm) and pass the .wasm bytes"
            )
        found = " ".join(f"{b:02x}" for b in data[:4])
        return (
            f"not a WebAssembly module: the file starts with bytes {found}, "
            "not the magic bytes 00 61 73 6d (\\0asm); pass the compiled .wasm binary"
        )
    if len(data) < len(HEADER):
        return too_short
    version = data[4:8]
    if version != WASM_VERSION:
        if version[2:4] == b"\x01\x00":
            return (
                "not a WebAssembly module: this is a WebAssembly component, not a core module; "
                "build a core module (e.g. for wasm32-unknown-unknown)"
            )
        found = " ".join(f"{b:02x}" for b in version)
        return (
            f"not a WebAssembly module: unsupported binary version {found}, expected 01 00 00 00; "
            "build a core WebAssembly 1.0 module"
        )
    return None


def _check_imports(p: Layout, policy: WasmPolicy, reasons: list[str]) -> None:
    allowed = policy.allowed_imports
    for module, name, kind in p.imports:
        if f"{module}.{name}" in allowed:
            continue
        what = KIND_NAMES[kind]
        label = f"import {_show(module)}.{_show(name)}"
        if kind == FUNCTION:
            why = "candidates may not import host functions"
        else:
            label += f" ({what})"
            why = f"candidates may not import a {what} from the host"
        if allowed:
            shown = ", ".join(_show(a) for a in sorted(allowed))
            todo = f"only {shown} may be imported; remove it"
        elif kind == FUNCTION:
            todo = (
                "remove it (no WASI, no std I/O: build for wasm32-unknown-unknown without printing or files)"
            )
        else:
            todo = f"define the {what} inside the module instead"
        reasons.append(f"{label} is not allowed: {why}; {todo}")


def _check_exports(p: Layout, policy: WasmPolicy, complete: bool, reasons: list[str]) -> None:
    by_name = {name: (kind, index) for name, kind, index in p.exports}
    for spec in policy.required_exports:
        found = by_name.get(spec.name)
        if found is None:
            if complete:
                reasons.append(
                    f"required export {spec} is missing: export a function named {_show(spec.name)} "
                    f"with that signature, e.g. {_wat_hint(spec)} in WAT or {_rust_hint(spec)} in Rust"
                )
            continue
        kind, index = found
        if kind != FUNCTION:
            reasons.append(
                f"export {_show(spec.name)} is a {KIND_NAMES[kind]}, not a function: "
                f"the name is required for the function {spec}; export that function under this name "
                f"and rename the {KIND_NAMES[kind]}"
            )
            continue
        signature = p.signature(index)
        if signature is None:
            if complete:
                reasons.append(
                    f"export {_show(spec.name)} has a signature that could not be read, expected {spec}: "
                    "export a plain function with that signature"
                )
            continue
        if signature != (spec.params, spec.results):
            reasons.append(
                f"export {_show(spec.name)} has signature {_show(spec.name)}:{signature_text(*signature)}, "
                f"expected {spec}: change the function to match, e.g. {_wat_hint(spec)} in WAT or "
                f"{_rust_hint(spec)} in Rust"
            )


def _check_memories(p: Layout, policy: WasmPolicy, complete: bool, reasons: list[str]) -> None:
    count = len(p.memories)
    imported = sum(1 for _, origin in p.memories if origin is not None)
    bound = policy.max_memory_pages
    if count == 0 and complete:
        reasons.append(
            f"module has no memory: declare exactly one memory with a maximum of at most {_pages(bound)}, "
            f"e.g. {_MAX_MEMORY_HINT}"
        )
    elif count > 1:
        of_which = f" ({imported} imported)" if imported else ""
        reasons.append(
            f"module has {count} memories{of_which}: declare exactly one memory and remove the others"
        )
    for index, (limits, origin) in enumerate(p.memories):
        name = f"memory {index}{_imported_as(origin)}"
        if limits.shared:
            reasons.append(
                f"{name} is shared: declare a non-shared memory (no threads or atomics; drop `shared`)"
            )
        if limits.is_64:
            reasons.append(
                f"{name} is 64-bit (memory64): declare a 32-bit memory (drop `i64`, target wasm32)"
            )
        if limits.min_pages > bound:
            reasons.append(
                f"{name} starts at {_pages(limits.min_pages)}, above the limit of {_pages(bound)}: "
                f"lower its initial size (e.g. -C link-arg=--initial-memory=N for Rust, N in bytes)"
            )
        if limits.max_pages is None:
            reasons.append(
                f"{name} declares no maximum size: declare one of at most {_pages(bound)}, "
                f"e.g. {_MAX_MEMORY_HINT}"
            )
        elif limits.max_pages > bound:
            reasons.append(
                f"{name} declares a maximum of {_pages(limits.max_pages)}, "
                f"above the limit of {_pages(bound)}: lower it to at most {bound} pages, "
                f"e.g. {_MAX_MEMORY_HINT}"
            )


def _check_tables(p: Layout, policy: WasmPolicy, reasons: list[str]) -> None:
    if len(p.tables) > policy.max_tables:
        reasons.append(
            f"module has {len(p.tables)} tables, more than the {policy.max_tables} allowed: "
            "use fewer tables (one funcref table is enough for indirect calls)"
        )
    bound = policy.max_table_elements
    for index, (minimum, maximum, origin) in enumerate(p.tables):
        name = f"table {index}{_imported_as(origin)}"
        if minimum > bound:
            reasons.append(
                f"{name} starts with {minimum} elements, above the limit of {bound}: make it smaller"
            )
        if maximum is not None and maximum > bound:
            reasons.append(
                f"{name} declares a maximum of {maximum} elements, above the limit of {bound}: "
                f"lower it to at most {bound}"
            )


def _check_start(p: Layout, reasons: list[str]) -> None:
    if p.has_start:
        reasons.append(
            f"module has a start function (function {p.start_index}), which would run on instantiation: "
            "remove the start section and do the work in an exported function"
        )


def _check_counts(p: Layout, policy: WasmPolicy, reasons: list[str]) -> None:
    merge = "merge the static data into fewer segments"
    for count, bound, what, todo in (
        (p.functions, policy.max_functions, "functions", "make the program smaller"),
        (p.globals, policy.max_globals, "globals", "use fewer globals"),
        (p.data_segments, policy.max_data_segments, "data segments", merge),
    ):
        if count is not None and count > bound:
            reasons.append(f"module defines {count} {what}, more than the {bound} allowed: {todo}")


# Wording: untrusted names made printable, sizes for people, examples of a wanted export.


def _show(name: str, limit: int = 80) -> str:
    """An untrusted name, made safe to print: control characters escaped, length bounded."""
    if name.isprintable() and len(name) <= limit and name:
        return name
    return clip(repr(name)[1:-1] if name else '""', limit)


def _mib(byte_count: int) -> str:
    return f"{byte_count / (1024 * 1024):.1f} MiB"


def _bytes(byte_count: int) -> str:
    """A byte count for people: 900 bytes, 2045 bytes (2.0 KiB), 11534400 bytes (11.0 MiB)."""
    if byte_count >= 1024 * 1024:
        return f"{byte_count} bytes ({_mib(byte_count)})"
    if byte_count >= 1024:
        return f"{byte_count} bytes ({byte_count / 1024:.1f} KiB)"
    return f"{byte_count} bytes"


def _pages(pages: int) -> str:
    size = pages * PAGE_BYTES
    return f"{pages} pages ({_mib(size)})" if size >= 1024 * 1024 else f"{pages} pages ({size // 1024} KiB)"


def _wat_hint(spec: ExportSpec) -> str:
    params = f" (param {' '.join(spec.params)})" if spec.params else ""
    results = f" (result {' '.join(spec.results)})" if spec.results else ""
    return f'(func (export "{_show(spec.name)}"){params}{results} ...)'


def _rust_hint(spec: ExportSpec) -> str:
    # The four wasm value types are spelled the same in Rust; parameters are named a, b, ..., a26, ...
    args = ", ".join(f"{chr(ord('a') + i) if i < 26 else f'a{i}'}: {t}" for i, t in enumerate(spec.params))
    if not spec.results:
        ret = ""
    elif len(spec.results) == 1:
        ret = f" -> {spec.results[0]}"
    else:
        ret = " -> (" + ", ".join(spec.results) + ")"
    return f'#[no_mangle] pub extern "C" fn {_show(spec.name)}({args}){ret}'


def _imported_as(origin: Origin) -> str:
    return "" if origin is None else f" (imported as {_show(origin[0])}.{_show(origin[1])})"
