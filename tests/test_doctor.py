"""`synapse-ng doctor`, run as a user runs it (a real process): on this machine every check passes, and a
missing compiler or a corrupt model file fails the right line with what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from synapse_ng.llm.embedded_model import EMBEDDED

pytestmark = pytest.mark.timeout(300)


def doctor(*args: str, env: dict | None = None) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "synapse_ng.cli", "doctor", "--json", *args],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, json.loads(done.stdout)


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def test_every_check_passes_on_this_machine():
    code, report = doctor()
    checks = by_name(report)
    assert code == 0 and report["ok"], json.dumps(report, indent=2)
    assert set(checks) == {
        "python",
        "rustc + wasm32 std + lld",
        "clang + wasm-ld",
        "wasmtime",
        "model file",
        "cpu",
        "llama.cpp build",
        "generation",
        "disk",
    }
    assert "fib(50) right in the sandbox" in checks["rustc + wasm32 std + lld"]["detail"]
    assert "fib(50) right in the sandbox" in checks["clang + wasm-ld"]["detail"]
    assert EMBEDDED.sha256[:16] in checks["model file"]["detail"]
    assert "chosen at run time" in checks["llama.cpp build"]["detail"]  # the portable build, not a native one
    assert "sapphirerapids" not in checks["llama.cpp build"]["detail"]
    assert "generation" in checks["generation"]["detail"] and "tokens/s" in checks["generation"]["detail"]
    assert "worker pid" in checks["generation"]["detail"]  # in a child process, not the CLI's


def test_a_missing_compiler_fails_its_line_with_the_fix():
    code, report = doctor("--rustc", "/nonexistent/rustc", "--clang", "/nonexistent/clang")
    checks = by_name(report)
    assert code == 1 and not report["ok"]
    rust, clang = checks["rustc + wasm32 std + lld"], checks["clang + wasm-ld"]
    assert (
        not rust["ok"]
        and "/nonexistent/rustc" in rust["detail"]
        and "apt-get install rustc libstd-rust-dev-wasm32 lld" in rust["fix"]
    )
    assert (
        not clang["ok"]
        and "/nonexistent/clang" in clang["detail"]
        and "apt-get install clang lld" in clang["fix"]
    )
    assert checks["wasmtime"]["ok"] and checks["python"]["ok"]  # the other lines still tell the truth


def test_a_corrupt_model_file_fails_its_line_and_is_left_alone(tmp_path):
    corrupt = tmp_path / EMBEDDED.filename
    corrupt.write_bytes(b"GGUF" + os.urandom(4096))
    code, report = doctor(env={"SYNAPSE_MODEL_DIR": str(tmp_path)})
    checks = by_name(report)
    assert code == 1
    model = checks["model file"]
    assert not model["ok"] and "corrupt" in model["detail"] and EMBEDDED.sha256 in model["detail"]
    assert "synapse-ng model install --reverify" in model["fix"]
    assert not checks["generation"]["ok"] and "skipped" in checks["generation"]["detail"]
    assert corrupt.exists() and corrupt.stat().st_size == 4100  # the doctor reports; it does not repair


def test_a_missing_model_names_the_install_command(tmp_path):
    code, report = doctor(env={"SYNAPSE_MODEL_DIR": str(tmp_path / "empty")})
    model = by_name(report)["model file"]
    assert code == 1 and not model["ok"] and "synapse-ng model install" in model["fix"]
    assert not (tmp_path / "empty").exists()


def test_the_table_for_a_person_says_what_to_do(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "synapse_ng.cli", "doctor", "--rustc", "/nonexistent/rustc"],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "SYNAPSE_MODEL_DIR": str(tmp_path)},
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith("FAIL  rustc") for line in lines)
    assert any("to fix: apt-get install rustc" in line for line in lines)
    assert lines[-1].endswith("check(s) failed")
