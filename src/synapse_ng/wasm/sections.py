"""The section walk: what a module's import, function, table, memory, export and start sections declare.

``parse_sections(data)`` reads the sections after the 8-byte header with :class:`binary.Reader` into
a :class:`Layout`, and never raises: a failure ends the walk with ``Layout.error`` set, keeping what
was read before it. Only what the checks need is kept; the code and data payloads are skipped.

This mirrors the binary format by hand rather than asking wasmtime, on purpose. Wasmtime's
``Module.imports``/``exports`` need a compiled module (``inspect.py`` only validates), and they do
not show what the security checks must see: a memory or table that is neither imported nor exported,
the counts of defined functions, globals and data segments, the start function. The export signatures
are read here too, because wasmtime-py (50.x) aborts the process, rather than raising, when asked for
the parameters of a function type with GC reference types, and a candidate may declare one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .binary import HEADER, Malformed, Reader

__all__ = [
    "FUNCTION",
    "KIND_NAMES",
    "Layout",
    "MemoryLimits",
    "Origin",
    "Signature",
    "Table",
    "parse_sections",
]

SECTION_NAMES = {
    0: "custom",
    1: "type",
    2: "import",
    3: "function",
    4: "table",
    5: "memory",
    6: "global",
    7: "export",
    8: "start",
    9: "element",
    10: "code",
    11: "data",
    12: "data count",
    13: "tag",
}
KIND_NAMES = {0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag"}  # import and export kinds
FUNCTION = 0

Origin = tuple[str, str] | None  # (module, name) of an imported memory or table; None when defined here
Signature = tuple[tuple[str, ...], tuple[str, ...]]  # (params, results)


class MemoryLimits(NamedTuple):
    """One memory, imported or defined, in memory-index order."""

    min_pages: int
    max_pages: int | None
    shared: bool
    is_64: bool


class Table(NamedTuple):
    """One table, imported or defined, in table-index order."""

    min_elements: int
    max_elements: int | None
    origin: Origin


@dataclass
class Layout:
    """What the section walk found. `error` is set when it stopped early."""

    types: list[Signature | None] = field(default_factory=list)  # per type index; None: not a function
    imports: list[tuple[str, str, int]] = field(default_factory=list)  # (module, name, kind)
    imported_funcs: list[int] = field(default_factory=list)  # type indices of imported functions
    func_types: list[int] | None = None  # type indices of defined functions
    memories: list[tuple[MemoryLimits, Origin]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    exports: list[tuple[str, int, int]] = field(default_factory=list)  # (name, kind, index)
    functions: int | None = None
    globals: int | None = None
    data_segments: int | None = None
    has_start: bool = False
    start_index: int | None = None
    seen: set[int] = field(default_factory=set)  # ids of the sections read to the end
    error: str | None = None

    def signature(self, function_index: int) -> Signature | None:
        """The (params, results) of a function, imported or defined; None when it was not read."""
        imported = len(self.imported_funcs)
        if function_index < imported:
            type_index = self.imported_funcs[function_index]
        elif self.func_types is not None and function_index - imported < len(self.func_types):
            type_index = self.func_types[function_index - imported]
        else:
            return None
        if type_index >= len(self.types):
            return None
        return self.types[type_index]


def parse_sections(data: bytes) -> Layout:
    """Walk the sections after the 8-byte header. Never raises: a failure ends the walk with .error."""
    parsed = Layout()
    reader = Reader(data, len(HEADER), len(data))
    section = "module"
    try:
        while reader.pos < reader.end:
            section_start = reader.pos
            section_id = reader.byte()
            section = SECTION_NAMES.get(section_id, f"unknown (id {section_id})")
            size = reader.u32()
            if size > reader.end - reader.pos:
                remain = reader.end - reader.pos
                raise reader.fail(
                    f"the {section} section announces {size} bytes, only {remain} remain", section_start
                )
            body = Reader(data, reader.pos, reader.pos + size)
            reader.pos += size
            _parse_section(section_id, body, parsed)
            parsed.seen.add(section_id)
    except Malformed as error:
        parsed.error = f"could not read the {section} section: {error.message} (at offset 0x{error.offset:x})"
    except Exception as error:  # a bug here must still not let bad bytes through
        parsed.error = f"could not read the {section} section: internal error {type(error).__name__}: {error}"
    return parsed


def _parse_section(section_id: int, r: Reader, p: Layout) -> None:
    read = _READERS.get(section_id)
    if read is None:  # custom, element, code, data count, tag and anything newer: not needed here
        return
    exact = read(r, p)
    if exact and r.pos != r.end:
        raise r.fail(f"{r.end - r.pos} unexpected bytes at the end of the section")


# Each section reader returns whether it read its section to the end, so that trailing bytes are an error;
# the global and data readers take only the count and skip the rest.


def _type_section(r: Reader, p: Layout) -> bool:
    for _ in range(r.u32()):
        form = r.byte()
        if form == 0x4E:  # rec group
            for _ in range(r.u32()):
                p.types.append(_sub_type(r, r.byte()))
        else:
            p.types.append(_sub_type(r, form))
    return True


def _import_section(r: Reader, p: Layout) -> bool:
    for _ in range(r.u32()):
        module, name = r.name(), r.name()
        kind = r.byte()
        if kind == 0:
            p.imported_funcs.append(r.u32())
        elif kind == 1:
            minimum, maximum = r.table_type()
            p.tables.append(Table(minimum, maximum, (module, name)))
        elif kind == 2:
            p.memories.append((MemoryLimits(*r.limits("memory")), (module, name)))
        elif kind == 3:
            r.value_type()
            r.byte()  # mutability
        elif kind == 4:
            r.byte()  # tag attribute
            r.u32()
        else:
            raise r.fail(f"unknown import kind 0x{kind:02x}", r.pos - 1)
        p.imports.append((module, name, kind))
    return True


def _function_section(r: Reader, p: Layout) -> bool:
    count = r.u32()
    p.functions = count
    rest = r.data[r.pos : r.end]
    if len(rest) == count and (count == 0 or max(rest) < 0x80):  # every index one byte: no loop
        p.func_types = list(rest)
        r.pos = r.end
    else:
        p.func_types = [r.u32() for _ in range(count)]
    return True


def _table_section(r: Reader, p: Layout) -> bool:
    for _ in range(r.u32()):
        if r.peek() == 0x40:  # a table with an initializer expression
            r.byte()
            if r.byte() != 0x00:
                raise r.fail("malformed table with initializer", r.pos - 1)
            minimum, maximum = r.table_type()
            r.const_expr()
        else:
            minimum, maximum = r.table_type()
        p.tables.append(Table(minimum, maximum, None))
    return True


def _memory_section(r: Reader, p: Layout) -> bool:
    for _ in range(r.u32()):
        p.memories.append((MemoryLimits(*r.limits("memory")), None))
    return True


def _global_section(r: Reader, p: Layout) -> bool:
    p.globals = r.u32()
    return False


def _export_section(r: Reader, p: Layout) -> bool:
    for _ in range(r.u32()):
        name = r.name()
        kind = r.byte()
        if kind not in KIND_NAMES:
            raise r.fail(f"unknown export kind 0x{kind:02x}", r.pos - 1)
        p.exports.append((name, kind, r.u32()))
    return True


def _start_section(r: Reader, p: Layout) -> bool:
    p.has_start = True
    p.start_index = r.u32()
    return True


def _data_section(r: Reader, p: Layout) -> bool:
    p.data_segments = r.u32()
    return False


_READERS = {
    1: _type_section,
    2: _import_section,
    3: _function_section,
    4: _table_section,
    5: _memory_section,
    6: _global_section,
    7: _export_section,
    8: _start_section,
    11: _data_section,
}


def _sub_type(r: Reader, form: int) -> Signature | None:
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


def _field_type(r: Reader) -> None:
    if r.peek() in (0x78, 0x77):  # packed i8 / i16
        r.byte()
    else:
        r.value_type()
    r.byte()  # mutability
