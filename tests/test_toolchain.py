"""The toolchains, with the real compilers: rustc for wasm32, clang + wasm-ld, wasmtime's wat2wasm."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time

import pytest

from synapse_ng.errors import CompilerNotFound, TargetMissing
from synapse_ng.models import CodeLanguage
from synapse_ng.toolchain import CompileOptions, CompileStatus, compile_source, find_rustc
from synapse_ng.toolchain import rust as rust_module
from synapse_ng.toolchain.isolate import ProcessLimits, run_isolated
from synapse_ng.wasm.inspect import inspect_wasm
from synapse_ng.wasm.policy import ExportSpec, WasmPolicy
from synapse_ng.wasm.sandbox import Sandbox

RUST_ADD = '#[no_mangle]\npub extern "C" fn add(a: i32, b: i32) -> i32 { a.wrapping_add(b) }\n'
RUST_POWF = '#[no_mangle]\npub extern "C" fn cube_root(x: f64) -> f64 { x.powf(1.0 / 3.0) }\n'
C_ADD = (
    "#include <stdint.h>\n"
    '__attribute__((export_name("add"))) int32_t add(int32_t a, int32_t b) { return a + b; }\n'
)
WAT_ADD = (
    '(module (memory (export "memory") 1 1)'
    ' (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
)
ADD = ExportSpec("add", ("i32", "i32"), ("i32",))


def _workdir_of(result) -> str:
    """The temporary directory a compile ran in, read back from its path-remapping flag."""
    for arg in result.command:
        match = re.match(r"(?:--remap-path-prefix=|-ffile-prefix-map=)(.+)=/candidate$", arg)
        if match:
            return match.group(1)
    raise AssertionError(f"no remap flag in {result.command}")


@pytest.mark.parametrize(
    "language, source",
    [(CodeLanguage.RUST, RUST_ADD), (CodeLanguage.C, C_ADD), (CodeLanguage.WAT, WAT_ADD)],
)
def test_each_language_compiles_to_a_module_that_passes_the_checks_and_runs(language, source):
    result = compile_source(source, language)
    assert result.ok, result.log
    assert result.sha256 == hashlib.sha256(result.wasm).hexdigest()
    assert result.size == len(result.wasm) > 8
    assert result.compiler_version
    report = inspect_wasm(result.wasm, WasmPolicy(required_exports=(ADD,)))
    assert report.ok, report.reasons
    assert Sandbox(result.wasm).run("add", 40, 2).values == (42,)


def test_rust_uses_the_fixed_flags_and_declares_a_memory_maximum():
    result = compile_source(RUST_ADD, CodeLanguage.RUST, CompileOptions(max_memory_pages=32))
    assert result.ok, result.log
    command = " ".join(result.command)
    for flag in (
        "--crate-type=cdylib",
        "opt-level=3",
        "lto=fat",
        "panic=abort",
        "codegen-units=1",
        "strip=symbols",
    ):
        assert flag in command
    assert "rustc" in result.compiler_version
    memories = inspect_wasm(result.wasm).info.memories
    assert [(m[1]) for m in memories] == [32]


def test_rust_std_math_is_available():
    result = compile_source(RUST_POWF, CodeLanguage.RUST)
    assert result.ok, result.log
    assert Sandbox(result.wasm).run("cube_root", 27.0).values[0] == pytest.approx(3.0)


def test_same_source_gives_the_same_bytes_whatever_the_temporary_directory():
    first = compile_source(RUST_ADD, CodeLanguage.RUST)
    second = compile_source(RUST_ADD, CodeLanguage.RUST)
    assert _workdir_of(first) != _workdir_of(second)
    assert first.sha256 == second.sha256


def test_same_c_source_gives_the_same_bytes_whatever_the_temporary_directory():
    # __FILE__ names the source as the compiler was given it: a relative name, the same on every voter.
    source = C_ADD + "const char *where(void) { return __FILE__; }\n"
    options = CompileOptions(exports=("where",))
    first = compile_source(source, CodeLanguage.C, options)
    second = compile_source(source, CodeLanguage.C, options)
    assert first.ok, first.log
    assert _workdir_of(first) != _workdir_of(second)
    assert first.wasm == second.wasm and first.sha256 == second.sha256
    assert os.path.basename(_workdir_of(first)).encode() not in first.wasm
    assert b"/tmp" not in first.wasm


def test_c_build_time_macros_are_refused_before_compiling():
    result = compile_source('const char *built(void) { return __DATE__ " " __TIME__; }\n', CodeLanguage.C)
    assert result.status is CompileStatus.REJECTED
    assert result.command == ()
    assert [v.rule for v in result.violations] == ["c-build-time", "c-build-time"]
    assert "same SHA-256" in result.violations[0].message


def test_sources_are_removed_after_compiling_unless_kept():
    removed = compile_source(RUST_ADD, CodeLanguage.RUST)
    assert not os.path.exists(_workdir_of(removed))
    kept = compile_source(RUST_ADD, CodeLanguage.RUST, CompileOptions(keep_source=True))
    try:
        assert kept.kept_source_dir and os.path.isfile(os.path.join(kept.kept_source_dir, "candidate.rs"))
    finally:
        import shutil

        shutil.rmtree(kept.kept_source_dir, ignore_errors=True)


def test_a_rust_compile_error_comes_back_with_the_compiler_log():
    result = compile_source('#[no_mangle]\npub extern "C" fn f() -> i32 { "no" }\n', CodeLanguage.RUST)
    assert result.status is CompileStatus.FAILED
    assert result.wasm is None
    assert "mismatched types" in result.log


def test_c_calling_an_undefined_function_fails_to_link_instead_of_importing_it():
    source = 'int host(int);\n__attribute__((export_name("f"))) int f(int x) { return host(x); }\n'
    result = compile_source(source, CodeLanguage.C)
    assert result.status is CompileStatus.FAILED
    assert "undefined symbol" in result.log


def test_c_exports_named_by_the_abi_without_an_attribute():
    source = "int twice(int x) { return 2 * x; }\n"
    result = compile_source(source, CodeLanguage.C, CompileOptions(exports=("twice",)))
    assert result.ok, result.log
    assert Sandbox(result.wasm).run("twice", 21).values == (42,)


def test_a_wat_syntax_error_is_a_failed_compile():
    result = compile_source('(module (func (export "f") (result i32) i32.const))', CodeLanguage.WAT)
    assert result.status is CompileStatus.FAILED
    assert result.log


def test_policy_rejection_runs_no_compiler():
    result = compile_source('const S: &str = include_str!("/etc/passwd");\n', CodeLanguage.RUST)
    assert result.status is CompileStatus.REJECTED
    assert result.command == ()  # nothing was run
    assert [v.rule for v in result.violations] == ["include-macro"]
    assert result.violations[0].line == 1


def test_oversized_source_is_rejected_before_compiling():
    result = compile_source("// " + "x" * (1 << 20) + "\n", CodeLanguage.RUST)
    assert result.status is CompileStatus.REJECTED
    assert result.violations[0].rule == "source-size"


# ----------------------------------------------------------------------- compilers that misbehave

EXPONENTIAL_MACRO = (
    "macro_rules! d { () => {}; (x $($t:tt)*) => { d!($($t)*); d!($($t)*); }; }\n"
    "pub fn f() { d!(x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x); }\n"
)


def test_a_compile_that_runs_forever_is_stopped_at_the_time_limit():
    result = compile_source(EXPONENTIAL_MACRO, CodeLanguage.RUST, CompileOptions(timeout_s=2))
    assert result.status in (CompileStatus.TIMEOUT, CompileStatus.KILLED)
    assert result.duration_s < 10
    if result.status is CompileStatus.TIMEOUT:
        assert "time limit" in result.log


def test_a_compile_that_eats_memory_is_killed_at_the_memory_limit():
    result = compile_source(
        EXPONENTIAL_MACRO, CodeLanguage.RUST, CompileOptions(timeout_s=60, memory_bytes=768 << 20)
    )
    assert result.status is CompileStatus.KILLED, result.log
    assert "resource limit" in result.log
    assert result.duration_s < 60


# ----------------------------------------------------------------------------- isolation itself


def test_the_child_sees_no_environment_but_path(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    outcome = run_isolated(["/usr/bin/env"], str(tmp_path), ProcessLimits(timeout_s=10))
    assert outcome.returncode == 0
    names = [line.split("=", 1)[0] for line in outcome.stdout.splitlines()]
    assert names == ["PATH"]
    assert "do-not-leak" not in outcome.stdout


def test_a_timeout_kills_the_whole_process_group(tmp_path):
    script = "sleep 60 & echo $! > child.pid; wait"
    outcome = run_isolated(["/bin/sh", "-c", script], str(tmp_path), ProcessLimits(timeout_s=1))
    assert outcome.timed_out
    assert outcome.duration_s < 10
    child = int((tmp_path / "child.pid").read_text())
    # The grandchild (a 60 s sleep) must be gone too: SIGKILL is delivered asynchronously, so give the
    # kernel a moment, then it must be a zombie, reaped, or no process at all.
    deadline = time.monotonic() + 3
    state = "?"
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as stat:
                state = stat.read().split()[2]
        except FileNotFoundError:
            state = "gone"
        if state in ("Z", "X", "gone"):
            break
        time.sleep(0.01)
    assert state in ("Z", "X", "gone")


def test_the_memory_limit_applies_to_the_child(tmp_path):
    allocate = "x = bytearray(1 << 30); print('allocated')"
    outcome = run_isolated(
        [sys.executable, "-c", allocate], str(tmp_path), ProcessLimits(timeout_s=30, memory_bytes=256 << 20)
    )
    assert outcome.returncode != 0
    assert "allocated" not in outcome.stdout
    assert "MemoryError" in outcome.stderr


# --------------------------------------------------------------------------- finding a compiler


@pytest.fixture
def clean_rustc_cache():
    find_rustc.cache_clear()
    yield
    find_rustc.cache_clear()


def test_rustc_search_skips_a_rustc_without_the_wasm32_target(tmp_path, monkeypatch, clean_rustc_cache):
    no_target = _rustc_without_target(tmp_path)
    found = find_rustc(str(no_target))
    assert found.path != str(no_target)
    assert os.path.isdir(found.target_libdir)


def test_only_rustcs_without_the_target_raise_target_missing(tmp_path, monkeypatch, clean_rustc_cache):
    no_target = _rustc_without_target(tmp_path)
    monkeypatch.setenv("PATH", str(no_target.parent))
    monkeypatch.setattr(rust_module, "SYSTEM_RUSTC", str(no_target))
    with pytest.raises(TargetMissing, match="libstd-rust-dev-wasm32"):
        find_rustc()


def test_a_configured_rustc_that_does_not_exist_is_compiler_not_found(clean_rustc_cache):
    with pytest.raises(CompilerNotFound, match="/no/such/rustc"):
        find_rustc("/no/such/rustc")


def test_no_rustc_anywhere_is_compiler_not_found(tmp_path, monkeypatch, clean_rustc_cache):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(rust_module, "SYSTEM_RUSTC", str(tmp_path / "rustc"))
    with pytest.raises(CompilerNotFound, match="apt-get install"):
        find_rustc()


def _rustc_without_target(tmp_path):
    """A real rustc whose sysroot holds no wasm32 standard library (what rustup gives by default)."""
    sysroot = tmp_path / "empty-sysroot"
    sysroot.mkdir()
    wrapper = tmp_path / "bin" / "rustc"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/rustc --sysroot "{sysroot}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


# ------------------------------------------------------------- real programs that misbehave at run time


def test_a_rust_program_that_allocates_forever_stops_at_the_memory_limit():
    source = (
        '#[no_mangle]\npub extern "C" fn hog() -> i32 {\n'
        "    let mut blocks: Vec<Vec<u8>> = Vec::new();\n"
        "    loop { blocks.push(vec![1u8; 60_000]); if blocks.len() == usize::MAX { return 0; } }\n"
        "}\n"
    )
    from synapse_ng.wasm.sandbox import SandboxLimits, TrapKind

    result = compile_source(source, CodeLanguage.RUST)
    assert result.ok, result.log
    outcome = Sandbox(result.wasm, SandboxLimits(memory_bytes=16 << 20)).run("hog")
    assert outcome.trap.kind is TrapKind.MEMORY_LIMIT, outcome.trap


def test_a_rust_program_that_recurses_forever_overflows_the_wasm_stack():
    source = (
        '#[no_mangle]\npub extern "C" fn deep(n: i32) -> i32 {\n'
        "    if n == i32::MIN { return 0; }\n"
        "    let r = deep(n.wrapping_add(1)); r.wrapping_mul(3).wrapping_add(n)\n"
        "}\n"
    )
    from synapse_ng.wasm.sandbox import TrapKind

    result = compile_source(source, CodeLanguage.RUST)
    assert result.ok, result.log
    assert Sandbox(result.wasm).run("deep", 0).trap.kind in (TrapKind.STACK_OVERFLOW, TrapKind.MEMORY_LIMIT)


# ----------------------------------------------------------------------- what the compiler read


@pytest.mark.parametrize(
    ("language", "source", "what"),
    [
        (CodeLanguage.RUST, 'const S: &str = include_str!("/etc/hostname");\n' + RUST_ADD, "/etc/hostname"),
        (CodeLanguage.RUST, 'const P: &str = env!("PATH");\n' + RUST_ADD, "environment variable 'PATH'"),
        (CodeLanguage.C, '#include "/etc/hostname"\n' + C_ADD, "/etc/hostname"),
    ],
)
def test_a_source_the_policy_missed_is_refused_by_what_the_compiler_read(
    monkeypatch, tmp_path, language, source, what
):
    """The attack: a policy with a hole (switched off here) lets a source read the host's files or
    environment. The compiler's own dependency record still names what it read, and the module is
    thrown away."""
    from synapse_ng.toolchain import c as c_module

    monkeypatch.setattr(rust_module, "check_rust", lambda source: [])
    monkeypatch.setattr(c_module, "check_c", lambda source: [])
    if language is CodeLanguage.C:  # /etc/hostname is not C: give clang a file that is, outside its dirs
        header = tmp_path / "outside.h"
        header.write_text("enum { OUTSIDE = 1 };\n")
        source, what = source.replace("/etc/hostname", str(header)), str(header)
    result = compile_source(source, language)
    assert result.status is CompileStatus.REJECTED and result.wasm is None
    assert result.command  # the compiler ran: it is its record that refused the module
    assert [v.rule for v in result.violations] == ["compiler-input"]
    assert what in result.violations[0].message and what in result.log


def test_clean_sources_read_only_themselves_and_clangs_headers():
    for language, source in ((CodeLanguage.RUST, RUST_ADD), (CodeLanguage.C, C_ADD)):
        result = compile_source(source, language)
        assert result.ok and result.violations == (), result.log


def test_the_dependency_file_is_read_as_make_writes_it():
    from synapse_ng.toolchain.inputs import read_dependencies

    text = (
        "candidate.wasm: candidate.rs /tmp/a\\ b.txt /x$$y \\\n  /z:w\n\n"
        "candidate.rs:\n/tmp/a\\ b.txt:\n\n# env-dep:HOME=/root\n"
    )
    files, variables = read_dependencies(text)
    assert files == ["candidate.rs", "/tmp/a b.txt", "/x$y", "/z:w"]
    assert variables == ["HOME"]
