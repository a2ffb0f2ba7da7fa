"""Static checks on a candidate's WebAssembly bytes, before anything is compiled or instantiated.

``inspect_wasm(data, policy)`` reads the module's section headers with a small, bounds-checked
parser of its own, asks wasmtime's validator whether the bytes are a valid module, and compares
what it read with a :class:`WasmPolicy`. It never raises on bad input: every problem, however
malformed the bytes, becomes one sentence in ``WasmReport.reasons`` that says what is wrong and
what to do about it. All problems are reported, not only the first, because the reasons are fed
back to the model that wrote the program.

Decisions worth knowing:

* Nothing is compiled. Export signatures come from the type and function sections read here, so
  the only wasmtime call is ``Module.validate`` (no code generation). The sandbox compiles later.
* When the 8-byte header is not a core-module header, the validator is not asked (it would only
  repeat the header complaint) and nothing else is checked.
* When the validator rejects the bytes, its message is the reason, and this parser's own complaint
  about the same bytes (if any) is not repeated. When the validator accepts bytes that this parser
  cannot read (an unusual proposal's encoding), that is a reason: fail closed.
* When the sections could not all be read, checks that need the whole module to say something is
  *absent* (a required export, the one memory) are skipped; checks on what *was* read still run.
* Memories and tables: imported ones count towards the limits like defined ones. Functions and
  globals: only the defined ones count (``functions``/``globals`` in ``ModuleInfo``); imported ones
  are already bounded by the import allowlist.
* Tables: the initial size must be within ``max_table_elements``; a declared maximum must be too;
  a table without a maximum is accepted (growth is for the run-time store limits to bound), which
  is what compilers emit. Memories, by contrast, must declare a maximum.
* Import names are matched as the string ``"module.name"``. That is ambiguous when a name contains
  a dot (``"a.b" + "c"`` and ``"a" + "b.c"`` are both ``"a.b.c"``); an allowlist entry admits both.
* Names read from the module are shown in reasons escaped and shortened: they are untrusted text.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

import wasmtime

__all__ = ["ExportSpec", "WasmPolicy", "MemoryLimits", "ModuleInfo", "WasmReport", "inspect_wasm", "VALUE_TYPES"]

VALUE_TYPES = ("i32", "i64", "f32", "f64")
PAGE_BYTES = 65536
WASM_MAGIC = b"\x00asm"
WASM_VERSION = b"\x01\x00\x00\x00"

_RUST_TYPES = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}


# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSpec:
    """A function export a module must have: its name and exact wasm signature."""

    name: str
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "results", tuple(self.results))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("an export spec needs a non-empty name, e.g. 'add:i32,i32->i32'")
        for value_type in self.params + self.results:
            if value_type not in VALUE_TYPES:
                raise ValueError(f"unknown value type {value_type!r} in export {self.name!r}: use i32, i64, f32 or f64")

    @classmethod
    def parse(cls, text: str) -> "ExportSpec":
        """Parse ``"name:params->results"``, e.g. ``"add:i32,i32->i32"``, ``"run:->"``, ``"f:->f64"``.

        Whitespace around the name and the types is ignored. The name is everything before the
        last ``:`` (so a name may itself contain ``:``).
        """
        if not isinstance(text, str):
            raise ValueError(f"an export spec must be a string like 'add:i32,i32->i32', not {type(text).__name__}")
        usage = "expected NAME:PARAMS->RESULTS, e.g. 'add:i32,i32->i32', 'run:->' or 'f:->f64'"
        name, colon, signature = text.rpartition(":")
        name = name.strip()
        if not colon or not name:
            raise ValueError(f"bad export spec {text!r}: {usage}")
        if signature.count("->") != 1:
            raise ValueError(f"bad export spec {text!r}: the signature needs exactly one '->'; {usage}")
        params_text, _, results_text = signature.partition("->")

        def types(part: str, what: str) -> tuple[str, ...]:
            part = part.strip()
            if not part:
                return ()
            found = tuple(item.strip() for item in part.split(","))
            for item in found:
                if not item:
                    raise ValueError(f"bad export spec {text!r}: empty type in the {what} list; {usage}")
                if item not in VALUE_TYPES:
                    raise ValueError(
                        f"bad export spec {text!r}: unknown value type {item!r} in the {what}; "
                        f"use i32, i64, f32 or f64"
                    )
            return found

        return cls(name, types(params_text, "parameters"), types(results_text, "results"))

    @property
    def signature(self) -> str:
        return f"{','.join(self.params)}->{','.join(self.results)}"

    def __str__(self) -> str:
        return f"{self.name}:{self.signature}"


@dataclass(frozen=True)
class WasmPolicy:
    """What a candidate module may contain. The defaults admit a plain, self-contained module."""

    max_bytes: int = 10 * 1024 * 1024
    allowed_imports: frozenset[str] = frozenset()  # "module.name" strings
    required_exports: tuple[ExportSpec, ...] = ()
    max_memory_pages: int = 1024  # 64 KiB pages: 64 MiB
    max_tables: int = 1
    max_table_elements: int = 10_000
    max_functions: int = 10_000
    max_globals: int = 1_000
    max_data_segments: int = 10_000

    def __post_init__(self) -> None:
        # Accept any iterable of names, and "add:i32->i32" strings for exports, for convenience.
        object.__setattr__(self, "allowed_imports", frozenset(self.allowed_imports))
        specs = tuple(ExportSpec.parse(s) if isinstance(s, str) else s for s in self.required_exports)
        object.__setattr__(self, "required_exports", specs)


class MemoryLimits(NamedTuple):
    """One memory, imported or defined, in memory-index order."""

    min_pages: int
    max_pages: int | None
    shared: bool
    is_64: bool


@dataclass(frozen=True)
class ModuleInfo:
    """What was read from the bytes, for reports. Counts are None when their section was not reached."""

    size: int
    sha256: str
    imports: tuple[str, ...] = ()  # "module.name"
    exports: tuple[str, ...] = ()  # "name:params->results", or "name (memory)" / "(table)" / "(global)" / "(tag)"
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


# --------------------------------------------------------------------------------------------
# The binary reader
# --------------------------------------------------------------------------------------------


class _Malformed(Exception):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


_NUMERIC = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
# Abstract heap types, and the short reference types with the same byte (nullable references).
_HEAP = {
    0x70: "func", 0x6F: "extern", 0x6E: "any", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct", 0x6A: "array",
    0x71: "none", 0x72: "noextern", 0x73: "nofunc", 0x69: "exn", 0x74: "noexn", 0x68: "cont", 0x75: "nocont",
}  # fmt: skip
_SHORT_REF = {
    0x70: "funcref", 0x6F: "externref", 0x6E: "anyref", 0x6D: "eqref", 0x6C: "i31ref", 0x6B: "structref",
    0x6A: "arrayref", 0x71: "nullref", 0x72: "nullexternref", 0x73: "nullfuncref", 0x69: "exnref",
    0x74: "nullexnref", 0x68: "contref", 0x75: "nullcontref",
}  # fmt: skip
_SHARED_HEAP = 0x65

_SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
    7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "data count", 13: "tag",
}  # fmt: skip
_KIND_NAMES = {0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag"}


class _Reader:
    """Bounds-checked reads from data[pos:end]. Every failure is a _Malformed with an offset."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int, end: int):
        self.data = data
        self.pos = pos
        self.end = end

    def fail(self, message: str, offset: int | None = None) -> _Malformed:
        return _Malformed(message, self.pos if offset is None else offset)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of section")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def peek(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of section")
        return self.data[self.pos]

    def uleb(self, bits: int) -> int:
        start = self.pos
        data, end = self.data, self.end
        result = shift = 0
        max_bytes = (bits + 6) // 7
        for _ in range(max_bytes):
            if self.pos >= end:
                raise self.fail("unexpected end of section inside an integer", start)
            b = data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if result >> bits:
                    raise self.fail(f"integer too large for u{bits}", start)
                return result
            shift += 7
        raise self.fail(f"integer too long for u{bits}", start)

    def u32(self) -> int:
        pos = self.pos
        if pos < self.end and self.data[pos] < 0x80:  # the common case, one byte
            self.pos = pos + 1
            return self.data[pos]
        return self.uleb(32)

    def sleb(self, bits: int) -> int:
        start = self.pos
        result = shift = 0
        for _ in range((bits + 6) // 7):
            if self.pos >= self.end:
                raise self.fail("unexpected end of section inside an integer", start)
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                if not -(1 << (bits - 1)) <= result < (1 << (bits - 1)):
                    raise self.fail(f"integer too large for s{bits}", start)
                return result
        raise self.fail(f"integer too long for s{bits}", start)

    def skip(self, count: int) -> None:
        if count > self.end - self.pos:
            raise self.fail(f"{count} bytes announced, only {self.end - self.pos} left in the section")
        self.pos += count

    def name(self) -> str:
        length = self.u32()
        start = self.pos
        self.skip(length)
        try:
            return self.data[start : self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a name is not valid UTF-8", start) from None

    # -- types -------------------------------------------------------------------------------

    def heap_type(self) -> str:
        b = self.peek()
        if b in _HEAP:
            self.pos += 1
            return _HEAP[b]
        if b == _SHARED_HEAP:
            self.pos += 1
            inner = self.byte()
            if inner not in _HEAP:
                raise self.fail(f"unknown shared heap type 0x{inner:02x}", self.pos - 1)
            return f"shared {_HEAP[inner]}"
        start = self.pos
        index = self.sleb(33)
        if index < 0:
            raise self.fail(f"unknown heap type 0x{b:02x}", start)
        return str(index)

    def value_type(self) -> str:
        start = self.pos
        b = self.byte()
        if b in _NUMERIC:
            return _NUMERIC[b]
        if b in _SHORT_REF:
            return _SHORT_REF[b]
        if b == 0x63:
            return f"(ref null {self.heap_type()})"
        if b == 0x64:
            return f"(ref {self.heap_type()})"
        raise self.fail(f"unknown value type 0x{b:02x}", start)

    def value_types(self) -> tuple[str, ...]:
        return tuple(self.value_type() for _ in range(self.u32()))

    def limits(self, what: str) -> tuple[int, int | None, bool, bool]:
        """(min, max or None, shared, 64-bit)."""
        start = self.pos
        flags = self.byte()
        if flags & ~0x07:
            raise self.fail(f"unsupported {what} limits flags 0x{flags:02x}", start)
        is_64 = bool(flags & 0x04)
        bits = 64 if is_64 else 32
        minimum = self.uleb(bits)
        maximum = self.uleb(bits) if flags & 0x01 else None
        return minimum, maximum, bool(flags & 0x02), is_64

    def table_type(self) -> tuple[int, int | None]:
        self.value_type()
        minimum, maximum, _shared, _is_64 = self.limits("table")
        return minimum, maximum

    def const_expr(self) -> None:
        """Skip a constant expression up to and including its `end`."""
        while True:
            start = self.pos
            op = self.byte()
            if op == 0x0B:  # end
                return
            if op in (0x41,):  # i32.const
                self.sleb(32)
            elif op == 0x42:  # i64.const
                self.sleb(64)
            elif op == 0x43:  # f32.const
                self.skip(4)
            elif op == 0x44:  # f64.const
                self.skip(8)
            elif op == 0xD0:  # ref.null
                self.heap_type()
            elif op in (0xD2, 0x23):  # ref.func, global.get
                self.u32()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                pass
            elif op == 0xFD:  # v128.const
                sub = self.u32()
                if sub != 12:
                    raise self.fail(f"unsupported instruction 0xfd {sub} in a constant expression", start)
                self.skip(16)
            elif op == 0xFB:  # GC constant instructions
                sub = self.u32()
                if sub in (0, 1, 6, 7):  # struct.new(_default), array.new(_default)
                    self.u32()
                elif sub == 8:  # array.new_fixed
                    self.u32()
                    self.u32()
                elif sub in (0x1A, 0x1B, 0x1C):  # any.convert_extern, extern.convert_any, ref.i31
                    pass
                else:
                    raise self.fail(f"unsupported instruction 0xfb {sub} in a constant expression", start)
            else:
                raise self.fail(f"unsupported instruction 0x{op:02x} in a constant expression", start)


@dataclass
class _Parsed:
    """What the section walk found. `error` is set when it stopped early."""

    types: list = field(default_factory=list)  # per type index: (params, results) or None (not a function)
    imports: list = field(default_factory=list)  # (module, name, kind)
    imported_funcs: list = field(default_factory=list)  # type indices of imported functions
    func_types: list | None = None  # type indices of defined functions
    memories: list = field(default_factory=list)  # (MemoryLimits, label suffix)
    tables: list = field(default_factory=list)  # (min, max, label suffix)
    exports: list = field(default_factory=list)  # (name, kind, index)
    functions: int | None = None
    globals: int | None = None
    data_segments: int | None = None
    has_start: bool = False
    start_index: int | None = None
    seen: set = field(default_factory=set)
    error: str | None = None


def _parse_sections(data: bytes) -> _Parsed:
    """Walk the sections after the 8-byte header. Never raises: a failure ends the walk with .error."""
    parsed = _Parsed()
    reader = _Reader(data, 8, len(data))
    section = "module"
    try:
        while reader.pos < reader.end:
            section_start = reader.pos
            section_id = reader.byte()
            section = _SECTION_NAMES.get(section_id, f"unknown (id {section_id})")
            size = reader.u32()
            if size > reader.end - reader.pos:
                remain = reader.end - reader.pos
                raise reader.fail(f"the {section} section announces {size} bytes, only {remain} remain", section_start)
            body = _Reader(data, reader.pos, reader.pos + size)
            reader.pos += size
            _parse_section(section_id, body, parsed)
            parsed.seen.add(section_id)
    except _Malformed as error:
        parsed.error = f"could not read the {section} section: {error.message} (at offset 0x{error.offset:x})"
    except Exception as error:  # a bug here must still not let bad bytes through
        parsed.error = f"could not read the {section} section: internal error {type(error).__name__}: {error}"
    return parsed


def _parse_section(section_id: int, r: _Reader, p: _Parsed) -> None:
    exact = True  # must the section's contents end exactly at its announced size?
    if section_id == 1:  # type
        for _ in range(r.u32()):
            form = r.byte()
            if form == 0x4E:  # rec group
                for _ in range(r.u32()):
                    p.types.append(_sub_type(r, r.byte()))
            else:
                p.types.append(_sub_type(r, form))
    elif section_id == 2:  # import
        for _ in range(r.u32()):
            module, name = r.name(), r.name()
            kind = r.byte()
            if kind == 0:
                p.imported_funcs.append(r.u32())
            elif kind == 1:
                minimum, maximum = r.table_type()
                p.tables.append((minimum, maximum, f" (imported as {_show(module)}.{_show(name)})"))
            elif kind == 2:
                limits = MemoryLimits(*r.limits("memory"))
                p.memories.append((limits, f" (imported as {_show(module)}.{_show(name)})"))
            elif kind == 3:
                r.value_type()
                r.byte()  # mutability
            elif kind == 4:
                r.byte()  # tag attribute
                r.u32()
            else:
                raise r.fail(f"unknown import kind 0x{kind:02x}", r.pos - 1)
            p.imports.append((module, name, kind))
    elif section_id == 3:  # function
        count = r.u32()
        p.functions = count
        rest = r.data[r.pos : r.end]
        if len(rest) == count and (count == 0 or max(rest) < 0x80):  # every index one byte: no loop
            p.func_types = list(rest)
            r.pos = r.end
        else:
            p.func_types = [r.u32() for _ in range(count)]
    elif section_id == 4:  # table
        for _ in range(r.u32()):
            if r.peek() == 0x40:  # a table with an initializer expression
                r.byte()
                if r.byte() != 0x00:
                    raise r.fail("malformed table with initializer", r.pos - 1)
                minimum, maximum = r.table_type()
                r.const_expr()
            else:
                minimum, maximum = r.table_type()
            p.tables.append((minimum, maximum, ""))
    elif section_id == 5:  # memory
        for _ in range(r.u32()):
            p.memories.append((MemoryLimits(*r.limits("memory")), ""))
    elif section_id == 6:  # global: the count only
        p.globals = r.u32()
        exact = False
    elif section_id == 7:  # export
        for _ in range(r.u32()):
            name = r.name()
            kind = r.byte()
            if kind not in _KIND_NAMES:
                raise r.fail(f"unknown export kind 0x{kind:02x}", r.pos - 1)
            p.exports.append((name, kind, r.u32()))
    elif section_id == 8:  # start
        p.has_start = True
        p.start_index = r.u32()
    elif section_id == 11:  # data: the count only
        p.data_segments = r.u32()
        exact = False
    else:  # custom, element, code, data count, tag and anything newer: not needed here
        exact = False
    if exact and r.pos != r.end:
        raise r.fail(f"{r.end - r.pos} unexpected bytes at the end of the section")


def _sub_type(r: _Reader, form: int):
    """One (sub)type: returns (params, results) for a function type, None for struct/array types."""
    if form in (0x50, 0x4F):  # sub / sub final: supertypes, then the composite type
        for _ in range(r.u32()):
            r.u32()
        form = r.byte()
    if form == 0x60:
        return r.value_types(), r.value_types()
    if form == 0x5F:  # struct
        for _ in range(r.u32()):
            _field_type(r)
        return None
    if form == 0x5E:  # array
        _field_type(r)
        return None
    raise r.fail(f"unsupported type form 0x{form:02x}", r.pos - 1)


def _field_type(r: _Reader) -> None:
    if r.peek() in (0x78, 0x77):  # packed i8 / i16
        r.byte()
    else:
        r.value_type()
    r.byte()  # mutability


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _engine() -> wasmtime.Engine:
    """One engine for validation, made on first use (an Engine is costly; validation is shared-safe)."""
    return wasmtime.Engine()


def _show(name: str, limit: int = 80) -> str:
    """An untrusted name, made safe to print: control characters escaped, length bounded."""
    if name.isprintable() and len(name) <= limit and name:
        return name
    shown = repr(name)[1:-1] if name else '""'
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


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


def _header_problem(data: bytes) -> str | None:
    if len(data) < 8 and (WASM_MAGIC + WASM_VERSION).startswith(data):
        return (
            f"not a WebAssembly module: the file is only {len(data)} bytes, shorter than the 8-byte header; "
            "pass the complete .wasm binary"
        )
    if data[:4] != WASM_MAGIC:
        stripped = data.lstrip()[:7]
        if stripped.startswith(b"(module") or stripped.startswith(b"(;") or stripped.startswith(b";;"):
            return (
                "not a WebAssembly module: this looks like WAT text; "
                "compile it to the binary format (wat2wasm) and pass the .wasm bytes"
            )
        found = " ".join(f"{b:02x}" for b in data[:4])
        return (
            f"not a WebAssembly module: the file starts with bytes {found}, not the magic bytes 00 61 73 6d (\\0asm); "
            "pass the compiled .wasm binary"
        )
    if len(data) < 8:
        return (
            f"not a WebAssembly module: the file is only {len(data)} bytes, shorter than the 8-byte header; "
            "pass the complete .wasm binary"
        )
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


def _function_signature(p: _Parsed, index: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    imported = len(p.imported_funcs)
    if index < imported:
        type_index = p.imported_funcs[index]
    elif p.func_types is not None and index - imported < len(p.func_types):
        type_index = p.func_types[index - imported]
    else:
        return None
    if type_index >= len(p.types):
        return None
    return p.types[type_index]


def _wat_hint(spec: ExportSpec) -> str:
    params = f" (param {' '.join(spec.params)})" if spec.params else ""
    results = f" (result {' '.join(spec.results)})" if spec.results else ""
    return f'(func (export "{_show(spec.name)}"){params}{results} ...)'


def _rust_hint(spec: ExportSpec) -> str:
    args = ", ".join(f"{chr(ord('a') + i) if i < 26 else f'a{i}'}: {_RUST_TYPES[t]}" for i, t in enumerate(spec.params))
    if not spec.results:
        ret = ""
    elif len(spec.results) == 1:
        ret = f" -> {_RUST_TYPES[spec.results[0]]}"
    else:
        ret = " -> (" + ", ".join(_RUST_TYPES[t] for t in spec.results) + ")"
    return f'#[no_mangle] pub extern "C" fn {_show(spec.name)}({args}){ret}'


def _describe_signature(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"{','.join(params)}->{','.join(results)}"


_MAX_MEMORY_HINT = (
    "(memory 1 16) in WAT, -C link-arg=--max-memory=N for Rust or -Wl,--max-memory=N for C "
    "(N in bytes, a multiple of 65536)"
)


def _check_imports(p: _Parsed, policy: WasmPolicy, reasons: list[str]) -> None:
    allowed = policy.allowed_imports
    for module, name, kind in p.imports:
        if f"{module}.{name}" in allowed:
            continue
        what = _KIND_NAMES[kind]
        label = f"import {_show(module)}.{_show(name)}"
        if kind != 0:
            label += f" ({what})"
        if kind == 0:
            why = "candidates may not import host functions"
        else:
            why = f"candidates may not import a {what} from the host"
        if allowed:
            shown = ", ".join(_show(a) for a in sorted(allowed))
            todo = f"only {shown} may be imported; remove it"
        elif kind == 0:
            todo = "remove it (no WASI, no std I/O: build for wasm32-unknown-unknown without printing or files)"
        else:
            todo = f"define the {what} inside the module instead"
        reasons.append(f"{label} is not allowed: {why}; {todo}")


def _check_exports(p: _Parsed, policy: WasmPolicy, complete: bool, reasons: list[str]) -> None:
    by_name = {name: (kind, index) for name, kind, index in p.exports}
    for spec in policy.required_exports:
        found = by_name.get(spec.name)
        if found is None:
            if complete:
                reasons.append(
                    f"required export {spec} is missing: export a function named {_show(spec.name)} with that "
                    f"signature, e.g. {_wat_hint(spec)} in WAT or {_rust_hint(spec)} in Rust"
                )
            continue
        kind, index = found
        if kind != 0:
            reasons.append(
                f"export {_show(spec.name)} is a {_KIND_NAMES[kind]}, not a function: the name is required for "
                f"the function {spec}; export that function under this name and rename the {_KIND_NAMES[kind]}"
            )
            continue
        signature = _function_signature(p, index)
        if signature is None:
            if complete:
                reasons.append(
                    f"export {_show(spec.name)} has a signature that could not be read, expected {spec}: "
                    "export a plain function with that signature"
                )
            continue
        params, results = signature
        if params != spec.params or results != spec.results:
            reasons.append(
                f"export {_show(spec.name)} has signature {_show(spec.name)}:{_describe_signature(params, results)}, "
                f"expected {spec}: change the function to match, e.g. {_wat_hint(spec)} in WAT or "
                f"{_rust_hint(spec)} in Rust"
            )


def _check_memories(p: _Parsed, policy: WasmPolicy, complete: bool, reasons: list[str]) -> None:
    count = len(p.memories)
    imported = sum(1 for _, label in p.memories if label)
    bound = policy.max_memory_pages
    if count == 0 and complete:
        reasons.append(
            f"module has no memory: declare exactly one memory with a maximum of at most {_pages(bound)}, "
            f"e.g. {_MAX_MEMORY_HINT}"
        )
    elif count > 1:
        of_which = f" ({imported} imported)" if imported else ""
        reasons.append(f"module has {count} memories{of_which}: declare exactly one memory and remove the others")
    for index, (limits, label) in enumerate(p.memories):
        name = f"memory {index}{label}"
        if limits.shared:
            reasons.append(f"{name} is shared: declare a non-shared memory (no threads or atomics; drop `shared`)")
        if limits.is_64:
            reasons.append(f"{name} is 64-bit (memory64): declare a 32-bit memory (drop `i64`, target wasm32)")
        if limits.min_pages > bound:
            reasons.append(
                f"{name} starts at {_pages(limits.min_pages)}, above the limit of {_pages(bound)}: "
                f"lower its initial size (e.g. -C link-arg=--initial-memory=N for Rust, N in bytes)"
            )
        if limits.max_pages is None:
            reasons.append(
                f"{name} declares no maximum size: declare one of at most {_pages(bound)}, e.g. {_MAX_MEMORY_HINT}"
            )
        elif limits.max_pages > bound:
            reasons.append(
                f"{name} declares a maximum of {_pages(limits.max_pages)}, above the limit of {_pages(bound)}: "
                f"lower it to at most {bound} pages, e.g. {_MAX_MEMORY_HINT}"
            )


def _check_tables(p: _Parsed, policy: WasmPolicy, reasons: list[str]) -> None:
    if len(p.tables) > policy.max_tables:
        reasons.append(
            f"module has {len(p.tables)} tables, more than the {policy.max_tables} allowed: "
            "use fewer tables (one funcref table is enough for indirect calls)"
        )
    bound = policy.max_table_elements
    for index, (minimum, maximum, label) in enumerate(p.tables):
        if minimum > bound:
            reasons.append(
                f"table {index}{label} starts with {minimum} elements, above the limit of {bound}: make it smaller"
            )
        if maximum is not None and maximum > bound:
            reasons.append(
                f"table {index}{label} declares a maximum of {maximum} elements, above the limit of {bound}: "
                f"lower it to at most {bound}"
            )


def _check_start(p: _Parsed, reasons: list[str]) -> None:
    if p.has_start:
        reasons.append(
            f"module has a start function (function {p.start_index}), which would run on instantiation: "
            "remove the start section and do the work in an exported function"
        )


def _check_counts(p: _Parsed, policy: WasmPolicy, reasons: list[str]) -> None:
    for count, bound, what, todo in (
        (p.functions, policy.max_functions, "functions", "make the program smaller"),
        (p.globals, policy.max_globals, "globals", "use fewer globals"),
        (p.data_segments, policy.max_data_segments, "data segments", "merge the static data into fewer segments"),
    ):
        if count is not None and count > bound:
            reasons.append(f"module defines {count} {what}, more than the {bound} allowed: {todo}")


def _export_text(p: _Parsed, name: str, kind: int, index: int) -> str:
    if kind == 0:
        signature = _function_signature(p, index)
        if signature is not None:
            return f"{name}:{_describe_signature(*signature)}"
    return f"{name} ({_KIND_NAMES[kind]})"


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


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
    if size > policy.max_bytes:
        reasons.append(
            f"module is {_bytes(size)}, above the cap of {_bytes(policy.max_bytes)}: make it smaller "
            "(optimize for size, strip debug info and names, shrink static data)"
        )
    header = _header_problem(data)
    if header is not None:
        reasons.append(header)
        return WasmReport(False, tuple(reasons), ModuleInfo(size, digest))

    invalid = _validate(data)
    p = _parse_sections(data)
    if invalid is not None:
        reasons.append(invalid)
    elif p.error is not None:
        reasons.append(
            f"{p.error}; this checker reads only plain core WebAssembly: rebuild without experimental features"
        )
    complete = p.error is None

    _check_imports(p, policy, reasons)
    _check_exports(p, policy, complete, reasons)
    _check_memories(p, policy, complete, reasons)
    _check_start(p, reasons)
    _check_tables(p, policy, reasons)
    _check_counts(p, policy, reasons)

    def counted(section_ids: tuple[int, ...], value):
        # A count is known when the module was read to the end or when its section(s) were read.
        return value if complete or any(s in p.seen for s in section_ids) else None

    info = ModuleInfo(
        size=size,
        sha256=digest,
        imports=tuple(f"{module}.{name}" for module, name, _ in p.imports),
        exports=tuple(_export_text(p, name, kind, index) for name, kind, index in p.exports),
        functions=counted((3,), p.functions or 0),
        memories=tuple(limits for limits, _ in p.memories),
        tables=counted((4,), len(p.tables)),
        globals=counted((6,), p.globals or 0),
        has_start=counted((8,), p.has_start),
        data_segments=counted((11,), p.data_segments or 0),
    )
    return WasmReport(not reasons, tuple(reasons), info)
