"""The `synapse-ng` command and the seed's compile script, run as real processes with real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from synapse_ng.cli import cli
from synapse_ng.toolchain import find_rustc
from synapse_ng.toolchain import rust as rust_module

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "synapse_ng.cli"]

RUST_ADD = '#[no_mangle]\npub extern "C" fn add(a: i32, b: i32) -> i32 { a.wrapping_add(b) }\n'


def synapse(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def wat_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(wasmtime.wat2wasm(text))
    return path


# ------------------------------------------------------------------------------------------ compile


def test_compile_rust_prints_size_and_hash_and_writes_the_module(tmp_path):
    src = write(tmp_path / "add.rs", RUST_ADD)
    done = synapse("compile", str(src), "-o", str(tmp_path / "out.wasm"))
    assert done.returncode == 0, done.stderr + done.stdout
    data = (tmp_path / "out.wasm").read_bytes()
    import hashlib

    assert f"sha256:   {hashlib.sha256(data).hexdigest()}" in done.stdout
    assert f"size:     {len(data)} bytes" in done.stdout


def test_compile_json_defaults_the_output_beside_the_source(tmp_path):
    src = write(tmp_path / "add.wat", '(module (memory 1 1) (func (export "f")))')
    done = synapse("compile", str(src), "--json")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["ok"] and report["output"] == str(tmp_path / "add.wasm")
    assert (tmp_path / "add.wasm").read_bytes()[:4] == b"\0asm"


@pytest.mark.parametrize(
    "name, text, code, needle",
    [
        ("bad.rs", 'pub fn f() -> i32 { "x" }\n', 3, "mismatched types"),
        ("leak.rs", 'const S: &str = include_str!("/etc/passwd");\n', 5, "include-macro"),
        ("env.rs", 'const H: &str = env!("HOME");\n', 5, "env-macro"),
        ("io.c", "#include <stdio.h>\nint f(void) { return 0; }\n", 5, "c-include"),
        ("bad.wat", "(module (func (result i32)))", 3, "type mismatch"),
    ],
)
def test_compile_failures_have_their_exit_code_and_say_why(tmp_path, name, text, code, needle):
    src = write(tmp_path / name, text)
    out = tmp_path / "out.wasm"
    done = synapse("compile", str(src), "-o", str(out))
    assert done.returncode == code, done.stdout + done.stderr
    assert needle in done.stdout + done.stderr
    assert not out.exists()  # nothing half-written


def test_compile_of_a_missing_file_or_unknown_suffix_is_a_usage_error(tmp_path):
    done = synapse("compile", str(tmp_path / "nope.rs"))
    assert done.returncode == 1 and "no such file" in done.stderr
    done = synapse("compile", str(write(tmp_path / "x.py", "print(1)")))
    assert done.returncode == 1 and "--language" in done.stderr


def test_compile_with_a_rustc_that_does_not_exist_is_exit_2(tmp_path):
    done = synapse("compile", str(write(tmp_path / "a.rs", RUST_ADD)), "--rustc", "/no/such/rustc", "--json")
    assert done.returncode == 2
    assert "/no/such/rustc" in json.loads(done.stdout)["error"]


def test_compile_without_the_wasm32_target_is_exit_4_with_the_install_command(tmp_path, monkeypatch):
    sysroot = tmp_path / "empty-sysroot"
    sysroot.mkdir()
    wrapper = write(tmp_path / "rustc", f'#!/bin/sh\nexec /usr/bin/rustc --sysroot "{sysroot}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(rust_module, "SYSTEM_RUSTC", str(wrapper))
    find_rustc.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["compile", str(write(tmp_path / "a.rs", RUST_ADD))])
    finally:
        find_rustc.cache_clear()
    assert result.exit_code == 4
    assert "apt-get install rustc libstd-rust-dev-wasm32" in result.output


# ------------------------------------------------------------------------------------------- verify


def test_verify_accepts_a_good_module_with_the_right_export(tmp_path):
    module = wat_file(tmp_path, "ok.wasm", '(module (memory 1 1) (func (export "add") (param i32 i32) (result i32) local.get 0))')
    done = synapse("verify", str(module), "--export", "add:i32,i32->i32")
    assert done.returncode == 0, done.stdout
    assert "accepted" in done.stdout


def test_verify_lists_every_reason(tmp_path):
    module = wat_file(
        tmp_path,
        "bad.wasm",
        '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
        ' (func $s) (start $s) (func (export "add") (param i32) (result i32) local.get 0))',
    )
    done = synapse("verify", str(module), "--export", "add:i32,i32->i32", "--json")
    assert done.returncode == 6
    reasons = " | ".join(json.loads(done.stdout)["reasons"])
    assert "wasi_snapshot_preview1.fd_write" in reasons
    assert "start" in reasons
    assert "add" in reasons  # wrong signature
    assert "memory" in reasons  # none declared


def test_verify_allows_an_allowlisted_import(tmp_path):
    module = wat_file(tmp_path, "imp.wasm", '(module (import "env" "f" (func)) (memory 1 1))')
    assert synapse("verify", str(module)).returncode == 6
    assert synapse("verify", str(module), "--allow-import", "env.f").returncode == 0


@pytest.mark.parametrize("content, needle", [(b"", "empty"), (b"\x00asm\x01\x00\x00\x00\xff\xff", "module"), (b"MZ\x90\x00garbage", "not a WebAssembly module")])
def test_verify_rejects_empty_and_invalid_bytes(tmp_path, content, needle):
    path = tmp_path / "x.wasm"
    path.write_bytes(content)
    done = synapse("verify", str(path))
    assert done.returncode == 6
    assert needle in done.stdout


def test_verify_a_missing_file_is_a_usage_error(tmp_path):
    done = synapse("verify", str(tmp_path / "missing.wasm"))
    assert done.returncode == 1 and "no such file" in done.stderr


def test_verify_a_bad_export_spec_is_a_usage_error(tmp_path):
    module = wat_file(tmp_path, "ok.wasm", "(module (memory 1 1))")
    done = synapse("verify", str(module), "--export", "add:i33->")
    assert done.returncode == 1 and "--export" in done.stderr


# ---------------------------------------------------------------------------------------------- run


def test_run_prints_results_and_fuel(tmp_path):
    module = wat_file(tmp_path, "add.wasm", '(module (memory 1 1) (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))')
    done = synapse("run", str(module), "add", "40", "-2", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["values"] == [38] and report["fuel_used"] > 0


@pytest.mark.parametrize(
    "body, options, kind",
    [
        ("(loop $l (br $l))", ["--fuel", "1000000"], "out_of_fuel"),
        ("(loop $l (br $l))", ["--fuel", "1000000000000000", "--timeout", "0.3"], "timeout"),
        ("(loop $l (drop (memory.grow (i32.const 1))) (br $l))", ["--memory-mb", "2", "--fuel", "10000000"], "memory_limit"),
        ("(call $f)", [], "stack_overflow"),
        ("unreachable", [], "trap"),
    ],
)
def test_run_exits_7_naming_the_trap(tmp_path, body, options, kind):
    module = wat_file(tmp_path, "bad.wasm", f'(module (memory (export "memory") 1 32) (func $f (export "f") {body}))')
    done = synapse("run", str(module), "f", *options)
    assert done.returncode == 7, done.stdout + done.stderr
    assert f"trapped: {kind}" in done.stdout


def test_run_refuses_a_module_that_fails_the_static_checks(tmp_path):
    module = wat_file(tmp_path, "start.wasm", '(module (memory 1 1) (func $s (loop $l (br $l))) (start $s) (func (export "f")))')
    done = synapse("run", str(module), "f")
    assert done.returncode == 6
    assert "start" in done.stdout


def test_run_bad_arguments_are_usage_errors(tmp_path):
    module = wat_file(tmp_path, "add.wasm", '(module (memory 1 1) (func (export "add") (param i32 i32) (result i32) local.get 0))')
    assert synapse("run", str(module), "add", "x", "1").returncode == 1
    done = synapse("run", str(module), "sub", "1", "2")
    assert done.returncode == 1 and "exports: add" in done.stderr


# ---------------------------------------------------------------------------- the seed's script


def test_compile_wasm_script_keeps_the_seed_usage_and_output(tmp_path):
    script = ROOT / "scripts" / "compile_wasm.sh"
    src = write(tmp_path / "add.rs", RUST_ADD)
    out = tmp_path / "add.wasm"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script), str(src), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("Input:", "Output:", "rustc version: rustc", "Size:", "SHA-256:"):
        assert label in done.stdout
    assert out.read_bytes()[:4] == b"\0asm"
    usage = subprocess.run(["bash", str(script), str(src)], capture_output=True, text=True, env=env)
    assert usage.returncode == 1 and "usage" in usage.stderr
    bad = write(tmp_path / "bad.rs", "pub fn f() -> i32 { }\n")
    failed = subprocess.run(["bash", str(script), str(bad), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert failed.returncode == 3 and "mismatched types" in failed.stdout


def test_demo_compiles_verifies_runs_and_measures():
    done = synapse("demo", "--pipeline", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert {s["language"] for s in report["samples"]} == {"rust", "c", "wat"}
    assert all(s["correct"] and s["verified"] and s["fuel_used"] > 0 for s in report["samples"])
    assert all(g["stopped"] for g in report["guards"])
    evaluation = {w["id"]: w for w in report["evaluation"]["workloads"]}
    assert evaluation["weibull_5k"]["baseline_bins"] == 2067.0 and round(evaluation["weibull_5k"]["candidate_excess_pct"], 2) == 0.68
    assert report["evaluation"]["reproduced"]
