"""WAT → wasm with wasmtime's own text parser: no external tool, nothing to isolate but the input size.

The parser is memory-safe Rust inside the wasmtime package; there is nothing a text module can make it
read or run, so it runs in process. Imports and start functions are the static checks' business.
"""

from __future__ import annotations

import functools
import time
from importlib.metadata import version as package_version

import wasmtime

from ..models import CodeLanguage
from .build import CompileOptions, oversize_violation, rejected
from .result import CompileResult, CompileStatus

COMPILER = "wasmtime.wat2wasm"


@functools.lru_cache(maxsize=1)
def _engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def wat_version() -> str:
    return f"wasmtime-py {package_version('wasmtime')} wat2wasm"


def compile_wat(source: str, options: CompileOptions = CompileOptions()) -> CompileResult:
    del options  # nothing to configure: no compiler process, no flags
    too_big = oversize_violation(source)
    if too_big:
        return rejected(CodeLanguage.WAT, [too_big], COMPILER, wat_version())
    started = time.monotonic()
    try:
        wasm = bytes(wasmtime.wat2wasm(source))
        # The text parser checks syntax only; a compiler that hands back invalid modules is no compiler.
        wasmtime.Module.validate(_engine(), wasm)
    except wasmtime.WasmtimeError as error:
        return CompileResult(
            CodeLanguage.WAT,
            CompileStatus.FAILED,
            None,
            str(error),
            time.monotonic() - started,
            COMPILER,
            wat_version(),
        )
    return CompileResult(
        CodeLanguage.WAT, CompileStatus.OK, wasm, "", time.monotonic() - started, COMPILER, wat_version()
    )
