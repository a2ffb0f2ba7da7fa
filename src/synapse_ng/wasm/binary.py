"""A bounds-checked reader for the WebAssembly binary format: integers, names, types, limits.

The bytes are an untrusted candidate's, so every read checks its bounds and a failure is a
:class:`Malformed` with the offset where it was found, never an IndexError or a wrong value.
``sections.py`` walks a module's sections with it, and says why the static checks read the bytes
themselves rather than asking wasmtime.
"""

from __future__ import annotations

from ..errors import InvalidInput

__all__ = ["HEADER", "WASM_MAGIC", "WASM_VERSION", "Malformed", "Reader"]

WASM_MAGIC = b"\x00asm"
WASM_VERSION = b"\x01\x00\x00\x00"
HEADER = WASM_MAGIC + WASM_VERSION  # every core module starts with these 8 bytes


class Malformed(InvalidInput):
    """The bytes cannot be read: what is wrong, and the offset where it was found."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


_NUMERIC = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
# Abstract heap types, and the short reference types with the same byte (nullable references).
_HEAP = {
    0x70: "func",
    0x6F: "extern",
    0x6E: "any",
    0x6D: "eq",
    0x6C: "i31",
    0x6B: "struct",
    0x6A: "array",
    0x71: "none",
    0x72: "noextern",
    0x73: "nofunc",
    0x69: "exn",
    0x74: "noexn",
    0x68: "cont",
    0x75: "nocont",
}
_SHORT_REF = {
    0x70: "funcref",
    0x6F: "externref",
    0x6E: "anyref",
    0x6D: "eqref",
    0x6C: "i31ref",
    0x6B: "structref",
    0x6A: "arrayref",
    0x71: "nullref",
    0x72: "nullexternref",
    0x73: "nullfuncref",
    0x69: "exnref",
    0x74: "nullexnref",
    0x68: "contref",
    0x75: "nullcontref",
}
_SHARED_HEAP = 0x65


class Reader:
    """Bounds-checked reads from data[pos:end]. Every failure is a Malformed with an offset."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int, end: int):
        self.data = data
        self.pos = pos
        self.end = end

    def fail(self, message: str, offset: int | None = None) -> Malformed:
        return Malformed(message, self.pos if offset is None else offset)

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
