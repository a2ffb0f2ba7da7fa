"""The `synapse-ng` command and the seed's compile script, run as real processes with real exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
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
    module = wat_file(
        tmp_path,
        "ok.wasm",
        '(module (memory 1 1) (func (export "add") (param i32 i32) (result i32) local.get 0))',
    )
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


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "empty"),
        (b"\x00asm\x01\x00\x00\x00\xff\xff", "module"),
        (b"MZ\x90\x00garbage", "not a WebAssembly module"),
    ],
)
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
    module = wat_file(
        tmp_path,
        "add.wasm",
        '(module (memory 1 1) (func (export "add") (param i32 i32) (result i32)'
        " local.get 0 local.get 1 i32.add))",
    )
    done = synapse("run", str(module), "add", "40", "-2", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["values"] == [38] and report["fuel_used"] > 0


@pytest.mark.parametrize(
    "body, options, kind",
    [
        ("(loop $l (br $l))", ["--fuel", "1000000"], "out_of_fuel"),
        ("(loop $l (br $l))", ["--fuel", "1000000000000000", "--timeout", "0.3"], "timeout"),
        (
            "(loop $l (drop (memory.grow (i32.const 1))) (br $l))",
            ["--memory-mb", "2", "--fuel", "10000000"],
            "memory_limit",
        ),
        ("(call $f)", [], "stack_overflow"),
        ("unreachable", [], "trap"),
    ],
)
def test_run_exits_7_naming_the_trap(tmp_path, body, options, kind):
    module = wat_file(
        tmp_path, "bad.wasm", f'(module (memory (export "memory") 1 32) (func $f (export "f") {body}))'
    )
    done = synapse("run", str(module), "f", *options)
    assert done.returncode == 7, done.stdout + done.stderr
    assert f"trapped: {kind}" in done.stdout


def test_run_refuses_a_module_that_fails_the_static_checks(tmp_path):
    module = wat_file(
        tmp_path,
        "start.wasm",
        '(module (memory 1 1) (func $s (loop $l (br $l))) (start $s) (func (export "f")))',
    )
    done = synapse("run", str(module), "f")
    assert done.returncode == 6
    assert "start" in done.stdout


def test_run_bad_arguments_are_usage_errors(tmp_path):
    module = wat_file(
        tmp_path,
        "add.wasm",
        '(module (memory 1 1) (func (export "add") (param i32 i32) (result i32) local.get 0))',
    )
    assert synapse("run", str(module), "add", "x", "1").returncode == 1
    done = synapse("run", str(module), "sub", "1", "2")
    assert done.returncode == 1 and "exports: add" in done.stderr


# ---------------------------------------------------------------------------- the seed's script


def test_compile_wasm_script_keeps_the_seed_usage_and_output(tmp_path):
    script = ROOT / "scripts" / "compile_wasm.sh"
    src = write(tmp_path / "add.rs", RUST_ADD)
    out = tmp_path / "add.wasm"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(script), str(src), str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("Input:", "Output:", "rustc version: rustc", "Size:", "SHA-256:"):
        assert label in done.stdout
    assert out.read_bytes()[:4] == b"\0asm"
    usage = subprocess.run(["bash", str(script), str(src)], capture_output=True, text=True, env=env)
    assert usage.returncode == 1 and "usage" in usage.stderr
    bad = write(tmp_path / "bad.rs", "pub fn f() -> i32 { }\n")
    failed = subprocess.run(
        ["bash", str(script), str(bad), str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert failed.returncode == 3 and "mismatched types" in failed.stdout


def test_demo_compiles_verifies_runs_and_measures():
    done = synapse("demo", "--pipeline", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert {s["language"] for s in report["samples"]} == {"rust", "c", "wat"}
    assert all(s["correct"] and s["verified"] and s["fuel_used"] > 0 for s in report["samples"])
    assert all(g["stopped"] for g in report["guards"])
    evaluation = {w["id"]: w for w in report["evaluation"]["workloads"]}
    assert (
        evaluation["weibull_5k"]["baseline_bins"] == 2067.0
        and round(evaluation["weibull_5k"]["candidate_excess_pct"], 2) == 0.68
    )
    assert report["evaluation"]["reproduced"]


# ---------------------------------------------- --json on node run, network up and upgrade rollback


def json_lines(text: str) -> list[dict]:
    """Every line a JSON object: what --json promises for a command that runs until stopped."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_until(process: subprocess.Popen, done, seen: list[dict]) -> dict:
    """Read JSON lines from a running command until `done(line)`; every line must be JSON."""
    while True:
        text = process.stdout.readline()
        assert text, f"ended early: {seen}"
        seen.append(json.loads(text))
        if done(seen[-1]):
            return seen[-1]


def test_node_run_json_streams_its_log_as_json_lines_and_ends_with_ok(tmp_path):
    from synapse_ng.network import free_port

    (tmp_path / "node.json").write_text(json.dumps({"evolve": False}))
    port = free_port()
    node = subprocess.Popen(
        [*CLI, "node", "run", "--data", str(tmp_path), "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[dict] = []
    try:
        listening = read_until(node, lambda line: "listening on" in line.get("message", ""), seen)
        assert seen[0] == {
            "event": "starting",
            "data": str(tmp_path),
            "url": f"http://127.0.0.1:{port}",
            "peers": [],
        }
        assert listening["event"] == "log" and listening["level"] == "INFO" and listening["time"]
        # The operator's rollback, as JSON too: this node has nothing live to roll back.
        refused = synapse(
            "upgrade",
            "rollback",
            "--node",
            f"http://127.0.0.1:{port}",
            "--data",
            str(tmp_path),
            "--component",
            "task_allocation",
            "--json",
        )
        assert refused.returncode == 1 and refused.stderr == ""
        report = json.loads(refused.stdout)
        assert (
            report["ok"] is False and report["exit_code"] == 1 and "nothing to roll back" in report["error"]
        )
    finally:
        node.terminate()
        rest = node.communicate(timeout=60)[0]
    assert node.returncode == -signal.SIGTERM  # stopped cleanly, then ended by the signal, as without --json
    lines = json_lines(rest)
    assert all(line["event"] == "log" for line in lines[:-1])
    assert lines[-1] == {
        "event": "stopped",
        "ok": True,
        "url": f"http://127.0.0.1:{port}",
        "signal": "SIGTERM",
    }


def test_node_run_json_reports_an_error_as_its_last_line(tmp_path):
    (tmp_path / "members.json").write_text(
        json.dumps([{"node_id": "NOT-HEX-" + "a" * 56, "url": "http://127.0.0.1:9"}])
    )
    done = synapse("node", "run", "--data", str(tmp_path), "--port", "1", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    last = json_lines(done.stdout)[-1]
    assert last["ok"] is False and last["exit_code"] == 1 and "members.json" in last["error"]


class _RollbackStub(BaseHTTPRequestHandler):
    """A node's rollback route: checks the operator's token and answers with the signed message's ids."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        ok = (
            self.path == "/api/upgrades/task_allocation/rollback"
            and self.headers["authorization"] == "Bearer t0k"
        )
        answer = (
            {"id": "a" * 64, "proposal_id": "b" * 64} if ok and body == {"reason": "why"} else {"error": "no"}
        )
        data = json.dumps(answer).encode()
        self.send_response(201 if ok else 401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_):
        pass


def test_upgrade_rollback_json_prints_the_signed_rollback_or_the_error(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RollbackStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        args = ["upgrade", "rollback", "--node", url, "--component", "task_allocation", "--reason", "why"]
        done = synapse(*args, "--token", "t0k", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout) == {
            "ok": True,
            "id": "a" * 64,
            "proposal_id": "b" * 64,
            "component": "task_allocation",
            "node": url,
        }
        person = synapse(*args, "--token", "t0k")
        assert person.stdout == f"rollback {'a' * 16} of proposal {'b' * 16} signed and spreading\n"
        refused = synapse(*args, "--token", "wrong", "--json")
        assert refused.returncode == 1
        assert json.loads(refused.stdout) == {
            "ok": False,
            "exit_code": 1,
            "error": f"{url} refused the rollback (401): no",
        }
    finally:
        server.shutdown()
        server.server_close()
    env = {k: v for k, v in os.environ.items() if k != "SYNAPSE_OPERATOR_TOKEN"}
    untokened = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert untokened.returncode == 1 and "operator token" in json.loads(untokened.stdout)["error"]


def _network_up_json(root: Path) -> tuple[subprocess.Popen, list[dict]]:
    process = subprocess.Popen(
        [*CLI, "network", "up", "--nodes", "1", "--data", str(root), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[dict] = []
    read_until(process, lambda line: line["event"] == "up", seen)
    return process, seen


def test_network_up_json_lists_its_nodes_and_ends_with_ok(tmp_path):
    process, seen = _network_up_json(tmp_path)
    try:
        node, up = seen
        assert node["event"] == "node" and node["index"] == 0 and node["data"] == str(tmp_path / "node0")
        assert len(node["id"]) == 64 and up == {"event": "up", "urls": [node["url"]]}
        assert httpx.get(node["url"] + "/api/identity", timeout=10).json()["node_id"] == node["id"]
    finally:
        process.terminate()
        rest = process.communicate(timeout=60)[0]
    assert process.returncode == 0 and json_lines(rest) == [{"event": "stopped", "ok": True}]


def test_network_up_json_ends_with_the_error_when_a_node_dies(tmp_path):
    process, seen = _network_up_json(tmp_path)
    try:
        pid = next(
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and _runs_node(p, tmp_path / "node0")
        )
        os.kill(pid, signal.SIGKILL)
        rest = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 10
    [last] = json_lines(rest)
    assert last["ok"] is False and last["exit_code"] == 10 and "was killed by signal SIGKILL" in last["error"]
    assert last["notes"] == ["network stopped: the other nodes were shut down cleanly"]


def _runs_node(proc: Path, data: Path) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    return "node" in argv and "run" in argv and str(data) in argv
