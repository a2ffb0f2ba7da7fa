"""Typed arrays in a module's linear memory (always little-endian, whatever the host is).

Components pass their inputs and read their results through a module's exported memory; the
pointers and lengths come from the untrusted module, so every access is bounds-checked here and a
bad one is a :class:`MemoryAccessError`, which the components turn into a wrong-answer verdict.
"""

from __future__ import annotations

import sys
from array import array

import wasmtime

from ..errors import InvalidInput

# wasm value names → array type codes of the same width.
DTYPES = {
    "u8": "B",
    "i8": "b",
    "i16": "h",
    "u16": "H",
    "i32": "i",
    "u32": "I",
    "i64": "q",
    "u64": "Q",
    "f32": "f",
    "f64": "d",
}
_BIG_ENDIAN_HOST = sys.byteorder == "big"


class MemoryAccessError(InvalidInput):
    """A read or write outside the module's memory, or of an unknown type (still a ValueError)."""


class LinearMemory:
    """One store's view of one memory: bounds-checked byte and typed-array reads and writes."""

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory):
        self._store = store
        self._memory = memory

    @property
    def size_bytes(self) -> int:
        return self._memory.data_len(self._store)

    def _check(self, ptr: int, length: int) -> None:
        if ptr < 0 or length < 0 or ptr + length > self.size_bytes:
            raise MemoryAccessError(
                f"access of {length} bytes at offset {ptr} is outside linear memory "
                f"of {self.size_bytes} bytes"
            )

    def read_bytes(self, ptr: int, length: int) -> bytes:
        self._check(ptr, length)
        return bytes(self._memory.read(self._store, ptr, ptr + length))

    def write_bytes(self, ptr: int, data: bytes) -> None:
        self._check(ptr, len(data))
        self._memory.write(self._store, data, ptr)

    def read_array(self, ptr: int, count: int, dtype: str) -> list:
        values = array(_code(dtype))
        values.frombytes(self.read_bytes(ptr, count * values.itemsize))
        if _BIG_ENDIAN_HOST:
            values.byteswap()
        return values.tolist()

    def write_array(self, ptr: int, values, dtype: str) -> int:
        """Write values at ptr; returns the number of bytes written."""
        try:
            packed = array(_code(dtype), values)
        except OverflowError as error:
            raise MemoryAccessError(f"a value does not fit {dtype}: {error}") from None
        if _BIG_ENDIAN_HOST:
            packed.byteswap()
        data = packed.tobytes()
        self.write_bytes(ptr, data)
        return len(data)


def _code(dtype: str) -> str:
    try:
        return DTYPES[dtype]
    except KeyError:
        raise MemoryAccessError(f"unknown element type {dtype!r}; known: {', '.join(DTYPES)}") from None
