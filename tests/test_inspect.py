"""Static checks on WebAssembly bytes: every problem reported, nothing instantiated, never an exception."""

from __future__ import annotations

import hashlib
import time

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_ng.wasm.inspect import ModuleInfo, WasmReport, _engine, inspect_wasm
from synapse_ng.wasm.policy import ExportSpec, WasmPolicy
from synapse_ng.wasm.sections import MemoryLimits

ADD = ExportSpec("add", ("i32", "i32"), ("i32",))
NEEDS_ADD = WasmPolicy(required_exports=(ADD,))

GOOD_WAT = """
(module
  (memory (export "memory") 1 16)
  (func (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add))
"""

MAX_MEMORY_HINT = (
    "(memory 1 16) in WAT, -C link-arg=--max-memory=N for Rust or -Wl,--max-memory=N for C "
    "(N in bytes, a multiple of 65536)"
)
NO_MAXIMUM = (
    f"memory 0 declares no maximum size: declare one of at most 1024 pages (64.0 MiB), e.g. {MAX_MEMORY_HINT}"
)
MISSING_ADD = (
    "required export add:i32,i32->i32 is missing: export a function named add with that signature, "
    'e.g. (func (export "add") (param i32 i32) (result i32) ...) in WAT or '
    '#[no_mangle] pub extern "C" fn add(a: i32, b: i32) -> i32 in Rust'
)
NO_HOST_FUNCTIONS = (
    "candidates may not import host functions; "
    "remove it (no WASI, no std I/O: build for wasm32-unknown-unknown without printing or files)"
)


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def check(data: bytes | str, policy: WasmPolicy = NEEDS_ADD) -> WasmReport:
    return inspect_wasm(wat(data) if isinstance(data, str) else data, policy)


# Hand assembly, for encodings the text format cannot express (or to pin the bytes exactly).


def leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + leb(len(payload)) + payload


def module(*sections: bytes) -> bytes:
    return b"\x00asm\x01\x00\x00\x00" + b"".join(sections)


def memory_section(flags: int, minimum: int, maximum: int | None = None) -> bytes:
    limits = bytes([flags]) + leb(minimum) + (leb(maximum) if maximum is not None else b"")
    return section(5, leb(1) + limits)


def data_section(size: int) -> bytes:
    segment = b"\x00" + b"\x41\x00\x0b" + leb(size) + bytes(size)  # active, memory 0, offset i32.const 0
    return section(11, leb(1) + segment)


# --------------------------------------------------------------------------------------------
# A good module
# --------------------------------------------------------------------------------------------


def test_good_module_passes_with_its_required_export():
    data = wat(GOOD_WAT)
    report = inspect_wasm(data, NEEDS_ADD)
    assert report.ok
    assert report.reasons == ()
    assert report.info == ModuleInfo(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        imports=(),
        exports=("memory (memory)", "add:i32,i32->i32"),
        functions=1,
        memories=(MemoryLimits(1, 16, False, False),),
        tables=0,
        globals=0,
        has_start=False,
        data_segments=0,
    )


def test_good_module_passes_the_default_policy_and_accepts_bytearray():
    report = inspect_wasm(bytearray(wat(GOOD_WAT)))
    assert report.ok and report.reasons == ()


def test_export_signatures_are_exact_for_every_value_type_and_imported_functions():
    data = wat(
        """
        (module
          (import "env" "log" (func $log (param i64 f32)))
          (memory 1 2)
          (global (export "g") i32 (i32.const 0))
          (table (export "t") 1 1 funcref)
          (export "log" (func $log))
          (func (export "run"))
          (func (export "f") (result f64) f64.const 1)
          (func (export "multi") (param f32 i64) (result i32 f64) i32.const 0 f64.const 0))
        """
    )
    policy = WasmPolicy(
        allowed_imports=frozenset({"env.log"}),
        required_exports=tuple(
            ExportSpec.parse(s) for s in ("run:->", "f:->f64", "multi:f32,i64->i32,f64", "log:i64,f32->")
        ),
    )
    report = inspect_wasm(data, policy)
    assert report.reasons == ()
    assert report.info.imports == ("env.log",)
    assert report.info.exports == (
        "g (global)",
        "t (table)",
        "log:i64,f32->",
        "run:->",
        "f:->f64",
        "multi:f32,i64->i32,f64",
    )
    assert report.info.functions == 3  # defined only; the import is not counted
    assert report.info.globals == 1
    assert report.info.tables == 1


# --------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------


def test_missing_export():
    report = check('(module (memory 1 2) (func (export "sub") (param i32 i32) (result i32) local.get 0))')
    assert not report.ok
    assert report.reasons == (MISSING_ADD,)


def test_export_with_another_signature():
    report = check('(module (memory 1 2) (func (export "add") (param i64 i64) (result i64) local.get 0))')
    assert report.reasons == (
        "export add has signature add:i64,i64->i64, expected add:i32,i32->i32: change the function to match, "
        'e.g. (func (export "add") (param i32 i32) (result i32) ...) in WAT or '
        '#[no_mangle] pub extern "C" fn add(a: i32, b: i32) -> i32 in Rust',
    )


def test_export_with_missing_result():
    report = check('(module (memory 1 2) (func (export "add") (param i32 i32)))')
    assert report.reasons == (
        "export add has signature add:i32,i32->, expected add:i32,i32->i32: change the function to match, "
        'e.g. (func (export "add") (param i32 i32) (result i32) ...) in WAT or '
        '#[no_mangle] pub extern "C" fn add(a: i32, b: i32) -> i32 in Rust',
    )


@pytest.mark.parametrize(
    ("declaration", "kind"),
    [
        ('(memory (export "add") 1 2)', "memory"),
        ('(memory 1 2) (global (export "add") i32 (i32.const 0))', "global"),
        ('(memory 1 2) (table (export "add") 1 1 funcref)', "table"),
    ],
)
def test_export_with_the_required_name_that_is_not_a_function(declaration, kind):
    report = check(f"(module {declaration})")
    assert report.reasons == (
        f"export add is a {kind}, not a function: the name is required for the function add:i32,i32->i32; "
        f"export that function under this name and rename the {kind}",
    )
    assert report.info.exports == (f"add ({kind})",)


# --------------------------------------------------------------------------------------------
# Imports
# --------------------------------------------------------------------------------------------

WASI_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory 1 2)
  (func (export "add") (param i32 i32) (result i32) local.get 0))
"""
ENV_WAT = """
(module
  (import "env" "f" (func $f))
  (memory 1 2)
  (func (export "add") (param i32 i32) (result i32) call $f local.get 0))
"""


def test_wasi_import_is_rejected():
    report = check(WASI_WAT)
    assert report.reasons == (f"import wasi_snapshot_preview1.fd_write is not allowed: {NO_HOST_FUNCTIONS}",)
    assert report.info.imports == ("wasi_snapshot_preview1.fd_write",)


def test_any_host_function_import_is_rejected():
    report = check(ENV_WAT)
    assert report.reasons == (f"import env.f is not allowed: {NO_HOST_FUNCTIONS}",)


def test_imports_in_the_allowlist_are_accepted():
    policy = WasmPolicy(
        allowed_imports=frozenset({"env.f", "wasi_snapshot_preview1.fd_write"}), required_exports=(ADD,)
    )
    assert check(ENV_WAT, policy).ok
    assert check(WASI_WAT, policy).ok


def test_an_import_outside_a_non_empty_allowlist_names_what_is_allowed():
    policy = WasmPolicy(allowed_imports=frozenset({"env.log"}), required_exports=(ADD,))
    assert check(ENV_WAT, policy).reasons == (
        "import env.f is not allowed: candidates may not import host functions; "
        "only env.log may be imported; remove it",
    )


def test_imported_memory_is_rejected_and_counts_as_a_memory():
    report = check('(module (import "env" "memory" (memory 1 2)) (memory 1 2))', WasmPolicy())
    assert report.reasons == (
        "import env.memory (memory) is not allowed: candidates may not import a memory from the host; "
        "define the memory inside the module instead",
        "module has 2 memories (1 imported): declare exactly one memory and remove the others",
    )


def test_imported_memory_limits_are_checked_even_when_the_import_is_allowed():
    policy = WasmPolicy(allowed_imports=frozenset({"env.memory"}))
    report = check('(module (import "env" "memory" (memory 1)))', policy)
    assert report.reasons == (
        "memory 0 (imported as env.memory) declares no maximum size: declare one of at most 1024 pages "
        f"(64.0 MiB), e.g. {MAX_MEMORY_HINT}",
    )


def test_untrusted_names_are_escaped_in_reasons():
    report = check('(module (import "env\\n" "f\\00" (func)) (memory 1 2))', WasmPolicy())
    assert report.reasons == (f"import env\\n.f\\x00 is not allowed: {NO_HOST_FUNCTIONS}",)
    assert report.info.imports == ("env\n.f\x00",)


# --------------------------------------------------------------------------------------------
# Start function
# --------------------------------------------------------------------------------------------


def test_start_function_is_rejected_without_running_it():
    data = wat(
        """
        (module
          (memory 1 2)
          (func $forever (loop $l (br $l)))
          (start $forever)
          (func (export "add") (param i32 i32) (result i32) local.get 0))
        """
    )
    began = time.perf_counter()
    report = inspect_wasm(data, NEEDS_ADD)
    assert time.perf_counter() - began < 5  # it would never return if the start function ran
    assert report.reasons == (
        "module has a start function (function 0), which would run on instantiation: "
        "remove the start section and do the work in an exported function",
    )
    assert report.info.has_start is True


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def test_two_memories():
    report = check(
        '(module (memory 1 2) (memory 1 2) (func (export "add") (param i32 i32) (result i32) local.get 0))'
    )
    assert report.reasons == ("module has 2 memories: declare exactly one memory and remove the others",)
    assert report.info.memories == (MemoryLimits(1, 2, False, False), MemoryLimits(1, 2, False, False))


def test_shared_memory():
    report = check(
        '(module (memory 1 2 shared) (func (export "add") (param i32 i32) (result i32) local.get 0))'
    )
    assert report.reasons == (
        "memory 0 is shared: declare a non-shared memory (no threads or atomics; drop `shared`)",
    )
    assert report.info.memories == (MemoryLimits(1, 2, True, False),)


def test_shared_memory_hand_assembled():
    report = inspect_wasm(module(memory_section(0x03, 1, 2)), WasmPolicy())
    assert report.reasons == (
        "memory 0 is shared: declare a non-shared memory (no threads or atomics; drop `shared`)",
    )


def test_memory_without_maximum():
    report = check('(module (memory 1) (func (export "add") (param i32 i32) (result i32) local.get 0))')
    assert report.reasons == (NO_MAXIMUM,)
    assert report.info.memories == (MemoryLimits(1, None, False, False),)


def test_memory_maximum_above_the_bound():
    report = check('(module (memory 1 2048) (func (export "add") (param i32 i32) (result i32) local.get 0))')
    assert report.reasons == (
        "memory 0 declares a maximum of 2048 pages (128.0 MiB), above the limit of 1024 pages (64.0 MiB): "
        f"lower it to at most 1024 pages, e.g. {MAX_MEMORY_HINT}",
    )


def test_memory_minimum_and_maximum_above_a_small_bound():
    report = check("(module (memory 8 8))", WasmPolicy(max_memory_pages=4))
    assert report.reasons == (
        "memory 0 starts at 8 pages (512 KiB), above the limit of 4 pages (256 KiB): lower its initial size "
        "(e.g. -C link-arg=--initial-memory=N for Rust, N in bytes)",
        "memory 0 declares a maximum of 8 pages (512 KiB), above the limit of 4 pages (256 KiB): "
        f"lower it to at most 4 pages, e.g. {MAX_MEMORY_HINT}",
    )


def test_memory_at_the_bound_is_accepted():
    assert check("(module (memory 1024 1024))", WasmPolicy()).ok


MEMORY64 = "memory 0 is 64-bit (memory64): declare a 32-bit memory (drop `i64`, target wasm32)"


def test_memory64():
    report = check('(module (memory i64 1 2) (func (export "add") (param i32 i32) (result i32) local.get 0))')
    assert report.reasons == (MEMORY64,)
    assert report.info.memories == (MemoryLimits(1, 2, False, True),)


def test_memory64_hand_assembled_with_a_64_bit_maximum():
    # flags 0x05: has a maximum, 64-bit; the maximum needs more than 32 bits.
    report = inspect_wasm(module(memory_section(0x05, 1, 1 << 40)), WasmPolicy())
    assert report.reasons == (
        MEMORY64,
        f"memory 0 declares a maximum of {1 << 40} pages ({(1 << 40) * 65536 / 2**20:.1f} MiB), "
        f"above the limit of 1024 pages (64.0 MiB): lower it to at most 1024 pages, e.g. {MAX_MEMORY_HINT}",
    )
    assert report.info.memories == (MemoryLimits(1, 1 << 40, False, True),)


def test_no_memory():
    report = check('(module (func (export "add") (param i32 i32) (result i32) local.get 0))')
    assert report.reasons == (
        "module has no memory: declare exactly one memory with a maximum of at most 1024 pages (64.0 MiB), "
        f"e.g. {MAX_MEMORY_HINT}",
    )
    assert report.info.memories == ()


# --------------------------------------------------------------------------------------------
# Size
# --------------------------------------------------------------------------------------------


def test_module_above_a_small_size_cap():
    data = wat(f'(module (memory 1 2) (data (i32.const 0) "{"x" * 2000}"))')
    report = inspect_wasm(data, WasmPolicy(max_bytes=1000))
    assert report.reasons == (
        f"module is {len(data)} bytes ({len(data) / 1024:.1f} KiB), above the cap of 1000 bytes: "
        "make it smaller (optimize for size, strip debug info and names, shrink static data)",
    )
    assert report.info.data_segments == 1


def test_module_above_the_default_10_mib_cap_is_reported_and_the_rest_still_checked():
    data = module(memory_section(0x00, 1), data_section(11 * 1024 * 1024))  # no maximum, too
    report = inspect_wasm(data)
    assert report.reasons == (
        f"module is {len(data)} bytes (11.0 MiB), above the cap of 10485760 bytes (10.0 MiB): "
        "make it smaller (optimize for size, strip debug info and names, shrink static data)",
        NO_MAXIMUM,
    )
    assert report.info.size == len(data)


# --------------------------------------------------------------------------------------------
# Bytes that are not a module
# --------------------------------------------------------------------------------------------


def test_empty_bytes():
    report = inspect_wasm(b"")
    assert report.reasons == (
        "empty file, expected a WebAssembly module: check that the build produced output",
    )
    assert report.info == ModuleInfo(size=0, sha256=hashlib.sha256(b"").hexdigest())


def test_garbage():
    report = inspect_wasm(b"garbage")
    assert report.reasons == (
        "not a WebAssembly module: the file starts with bytes 67 61 72 62, not the magic bytes 00 61 73 6d "
        "(\\0asm); pass the compiled .wasm binary",
    )
    assert report.info.imports == () and report.info.functions is None


def test_wat_text_instead_of_a_binary():
    assert inspect_wasm(GOOD_WAT.encode()).reasons == (
        "not a WebAssembly module: this looks like WAT text; compile it to the binary format (wat2wasm) "
        "and pass the .wasm bytes",
    )


def test_header_only_partly_there():
    assert inspect_wasm(b"\x00asm\x01").reasons == (
        "not a WebAssembly module: the file is only 5 bytes, shorter than the 8-byte header; "
        "pass the complete .wasm binary",
    )


def test_wrong_version_and_component():
    assert inspect_wasm(b"\x00asm\x02\x00\x00\x00").reasons == (
        "not a WebAssembly module: unsupported binary version 02 00 00 00, expected 01 00 00 00; "
        "build a core WebAssembly 1.0 module",
    )
    assert inspect_wasm(b"\x00asm\x0d\x00\x01\x00").reasons == (
        "not a WebAssembly module: this is a WebAssembly component, not a core module; "
        "build a core module (e.g. for wasm32-unknown-unknown)",
    )


def test_truncated_module():
    data = wat(GOOD_WAT)
    half = data[: len(data) // 2]
    report = inspect_wasm(half, NEEDS_ADD)
    # Only the validator's complaint: the missing export and memory are artefacts of the cut.
    assert report.reasons == (
        "WebAssembly validation failed: unexpected end-of-file (at offset 0x1c); the module is malformed or "
        "uses an unsupported feature: rebuild it with a standard toolchain",
    )
    assert report.info.size == len(half)


def test_validator_error_is_reported_alongside_the_policy_checks():
    report = check('(module (memory 1) (func (export "add") (param i32 i32) (result i32) i64.const 0))')
    assert len(report.reasons) == 2
    assert report.reasons[0].startswith("WebAssembly validation failed: type mismatch")
    assert report.reasons[0].endswith("rebuild it with a standard toolchain")
    assert "\n" not in report.reasons[0]
    assert report.reasons[1].startswith("memory 0 declares no maximum size")


def test_every_prefix_of_a_module_is_reported_never_raised():
    data = wat(
        """
        (module
          (type (func (param i32) (result i32)))
          (import "env" "g" (global i32))
          (import "env" "t" (table 1 2 funcref))
          (memory 1 2)
          (global $x (mut i32) (i32.const 0))
          (func $f (type 0) local.get 0)
          (export "f" (func $f))
          (elem (i32.const 0) $f)
          (data (i32.const 0) "hello"))
        """
    )
    assert inspect_wasm(data, WasmPolicy(allowed_imports=frozenset({"env.g", "env.t"}))).ok
    for cut in range(len(data)):
        report = inspect_wasm(data[:cut])
        assert not report.ok
        assert report.reasons


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_after_a_valid_header_never_raise(tail):
    report = inspect_wasm(b"\x00asm\x01\x00\x00\x00" + tail, NEEDS_ADD)
    assert report.ok == (not report.reasons)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=8, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_single_byte_changes_to_a_valid_module_never_raise(position, value):
    data = bytearray(wat(GOOD_WAT))
    data[position % len(data)] = value
    report = inspect_wasm(bytes(data), NEEDS_ADD)
    assert report.ok == (not report.reasons)


def test_oversized_leb_and_section_sizes_are_reasons():
    too_long = module(b"\x05" + b"\xff\xff\xff\xff\x0f")  # section size beyond the file
    assert inspect_wasm(too_long).reasons[0].startswith("WebAssembly validation failed:")
    bad_leb = module(b"\x05\x06\x01\x00\x80\x80\x80\x80")  # an unterminated LEB inside the section
    report = inspect_wasm(bad_leb)
    assert not report.ok
    assert report.reasons[0].startswith("WebAssembly validation failed:")


# --------------------------------------------------------------------------------------------
# Tables, functions, globals, data segments
# --------------------------------------------------------------------------------------------


def test_tables_count_and_bounds():
    report = check("(module (memory 1 2) (table 20000 funcref) (table 1 30000 externref))", WasmPolicy())
    assert report.reasons == (
        "module has 2 tables, more than the 1 allowed: use fewer tables (one funcref table is enough for "
        "indirect calls)",
        "table 0 starts with 20000 elements, above the limit of 10000: make it smaller",
        "table 1 declares a maximum of 30000 elements, above the limit of 10000: lower it to at most 10000",
    )
    assert report.info.tables == 2


def test_table_without_maximum_within_bounds_is_accepted():
    assert check("(module (memory 1 2) (table 10 funcref))", WasmPolicy()).ok


def test_table_with_an_initializer_expression_is_read():
    report = check("(module (memory 1 2) (table 20000 (ref null func) (ref.null func)))", WasmPolicy())
    assert report.reasons == (
        "table 0 starts with 20000 elements, above the limit of 10000: make it smaller",
    )


def test_function_global_and_data_segment_counts():
    data = wat(
        """
        (module
          (memory 1 2)
          (global i32 (i32.const 0)) (global i32 (i32.const 1)) (global i32 (i32.const 2))
          (func) (func) (func)
          (data (i32.const 0) "a") (data (i32.const 1) "b") (data (i32.const 2) "c"))
        """
    )
    report = inspect_wasm(data, WasmPolicy(max_functions=2, max_globals=2, max_data_segments=2))
    assert report.reasons == (
        "module defines 3 functions, more than the 2 allowed: make the program smaller",
        "module defines 3 globals, more than the 2 allowed: use fewer globals",
        "module defines 3 data segments, more than the 2 allowed: merge the static data into fewer segments",
    )
    assert (report.info.functions, report.info.globals, report.info.data_segments) == (3, 3, 3)
    assert inspect_wasm(data, WasmPolicy(max_functions=3, max_globals=3, max_data_segments=3)).ok


# --------------------------------------------------------------------------------------------
# Several problems at once
# --------------------------------------------------------------------------------------------


def test_a_module_with_several_problems_reports_all_of_them():
    data = wat(
        """
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
          (memory 1)
          (memory 1 2 shared)
          (func $init)
          (start $init)
          (func (export "add") (param i64) (result i64) local.get 0))
        """
    )
    report = inspect_wasm(data, NEEDS_ADD)
    assert not report.ok
    assert len(report.reasons) >= 3
    assert report.reasons == (
        f"import wasi_snapshot_preview1.fd_write is not allowed: {NO_HOST_FUNCTIONS}",
        "export add has signature add:i64->i64, expected add:i32,i32->i32: change the function to match, "
        'e.g. (func (export "add") (param i32 i32) (result i32) ...) in WAT or '
        '#[no_mangle] pub extern "C" fn add(a: i32, b: i32) -> i32 in Rust',
        "module has 2 memories: declare exactly one memory and remove the others",
        NO_MAXIMUM,
        "memory 1 is shared: declare a non-shared memory (no threads or atomics; drop `shared`)",
        "module has a start function (function 1), which would run on instantiation: "
        "remove the start section and do the work in an exported function",
    )


def test_size_cap_and_bad_header_are_both_reported():
    report = inspect_wasm(b"garbage" * 10, WasmPolicy(max_bytes=10))
    assert len(report.reasons) == 2
    assert report.reasons[0].startswith("module is 70 bytes, above the cap of 10 bytes: make it smaller")
    assert report.reasons[1].startswith("not a WebAssembly module:")


# --------------------------------------------------------------------------------------------
# ExportSpec and WasmPolicy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("add:i32,i32->i32", ExportSpec("add", ("i32", "i32"), ("i32",))),
        ("run:->", ExportSpec("run", (), ())),
        ("f:->f64", ExportSpec("f", (), ("f64",))),
        ("g:i64->", ExportSpec("g", ("i64",), ())),
        ("pair:f32->i32,f64", ExportSpec("pair", ("f32",), ("i32", "f64"))),
        ("ns:fn:i32->", ExportSpec("ns:fn", ("i32",), ())),
    ],
)
def test_export_spec_round_trips(text, spec):
    assert ExportSpec.parse(text) == spec
    assert str(spec) == text
    assert ExportSpec.parse(str(spec)) == spec


def test_export_spec_ignores_whitespace():
    assert ExportSpec.parse(" add : i32 , i32 -> i32 ") == ADD


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("add", "bad export spec 'add': expected NAME:PARAMS->RESULTS"),
        (":i32->i32", "bad export spec ':i32->i32': expected NAME:PARAMS->RESULTS"),
        ("add:i32,i32", "the signature needs exactly one '->'"),
        ("add:i32->i32->i32", "the signature needs exactly one '->'"),
        ("add:i32,,i32->i32", "empty type in the parameters list"),
        ("add:i32->i33", "unknown value type 'i33' in the results; use i32, i64, f32 or f64"),
        ("add:v128->", "unknown value type 'v128' in the parameters; use i32, i64, f32 or f64"),
    ],
)
def test_export_spec_errors(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        ExportSpec.parse(text)
    assert "i32" in str(caught.value)  # every message shows what a good spec looks like


def test_export_spec_direct_construction_is_checked():
    with pytest.raises(ValueError, match="unknown value type 'u32'"):
        ExportSpec("f", ("u32",), ())
    with pytest.raises(ValueError, match="non-empty name"):
        ExportSpec("", (), ())
    assert ExportSpec("f", ["i32"], ["i64"]).params == ("i32",)  # lists become tuples


def test_policy_accepts_plain_strings_and_sets():
    policy = WasmPolicy(allowed_imports={"env.f"}, required_exports=("add:i32,i32->i32",))
    assert policy.allowed_imports == frozenset({"env.f"})
    assert policy.required_exports == (ADD,)
    assert check(ENV_WAT, policy).ok


def test_non_bytes_input_is_a_caller_error():
    with pytest.raises(TypeError, match="needs the module's bytes"):
        inspect_wasm("(module)")  # type: ignore[arg-type]


def test_the_validation_engine_is_made_once():
    assert _engine() is _engine()


def test_signatures_are_exact_through_rec_groups_and_gc_types():
    data = wat(
        """
        (module
          (rec (type $s (struct (field (mut i8)) (field i64)))
               (type $b (func (param i32 (ref null $s)) (result i32))))
          (type $arr (sub (array (mut i16))))
          (type $c (func (param i32 i32) (result i32)))
          (memory 1 2)
          (func (export "weird") (type $b) local.get 0)
          (func (export "add") (type $c) local.get 0)
          (func (export "refs") (param funcref externref (ref func)) (result anyref) ref.null any))
        """
    )
    report = inspect_wasm(data, WasmPolicy(required_exports=(ADD, ExportSpec.parse("weird:i32->i32"))))
    assert report.info.exports == (
        "weird:i32,(ref null 0)->i32",
        "add:i32,i32->i32",
        "refs:funcref,externref,(ref func)->anyref",
    )
    assert report.reasons == (
        "export weird has signature weird:i32,(ref null 0)->i32, expected weird:i32->i32: "
        'change the function to match, e.g. (func (export "weird") (param i32) (result i32) ...) in WAT or '
        '#[no_mangle] pub extern "C" fn weird(a: i32) -> i32 in Rust',
    )


def test_bytes_the_validator_accepts_but_this_parser_cannot_read_are_rejected(monkeypatch):
    # Stand-in for a future proposal's encoding: pretend the validator accepted a truncated module.
    from synapse_ng.wasm import inspect as inspect_module

    monkeypatch.setattr(inspect_module, "_validate", lambda data: None)
    # An export section cut short: 5 bytes announced, 4 there.
    data = module(memory_section(0x01, 1, 2), b"\x07\x05\x01\x03ad")
    report = inspect_wasm(data, NEEDS_ADD)
    assert report.reasons == (
        "could not read the export section: the export section announces 5 bytes, only 4 remain "
        "(at offset 0xe); this checker reads only plain core WebAssembly: "
        "rebuild without experimental features",
    )
    # What was read is reported; what was not reached is None, not a misleading zero.
    assert report.info.memories == (MemoryLimits(1, 2, False, False),)
    assert report.info.functions is None and report.info.has_start is None


def test_a_name_cut_short_inside_a_section_is_read_as_far_as_possible(monkeypatch):
    from synapse_ng.wasm import inspect as inspect_module

    monkeypatch.setattr(inspect_module, "_validate", lambda data: None)
    data = module(memory_section(0x01, 1, 2), b"\x07\x04\x01\x03ad")  # a 3-byte name with 2 bytes left
    assert inspect_wasm(data, NEEDS_ADD).reasons == (
        "could not read the export section: 3 bytes announced, only 2 left in the section (at offset 0x12); "
        "this checker reads only plain core WebAssembly: rebuild without experimental features",
    )
