"""Time each stage of the pipeline, and the cost of isolating the Rust compile, side by side in one run.

    .venv/bin/python benchmarks/pipeline.py [--rounds N]

Bare and isolated Rust compiles of the same source with the same flags alternate, so machine noise hits
both alike; the figure that matters is their ratio. Verify and instantiate are timed on a module of about
100 KiB (code and data), the compile of that module to machine code separately, since a node caches it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime

import wasmtime

from synapse_ng.models import CodeLanguage
from synapse_ng.toolchain import CompileOptions, compile_source, find_rustc
from synapse_ng.wasm.inspect import inspect_wasm
from synapse_ng.wasm.policy import ExportSpec, WasmPolicy
from synapse_ng.wasm.sandbox import WASMTIME_VERSION, Sandbox

RUST = """
#[no_mangle]
pub extern "C" fn best_fit(item: i32, n: i32, caps: *const i32) -> i32 {
    let caps = unsafe { core::slice::from_raw_parts(caps, n as usize) };
    let mut best = -1i32;
    let mut best_left = i32::MAX;
    for (i, &cap) in caps.iter().enumerate() {
        let left = cap - item;
        if left >= 0 && left < best_left { best_left = left; best = i as i32; }
    }
    best
}
"""
C = """
#include <stdint.h>
__attribute__((export_name("best_fit")))
int32_t best_fit(int32_t item, int32_t n, const int32_t *caps) {
    int32_t best = -1, best_left = INT32_MAX;
    for (int32_t i = 0; i < n; i++) {
        int32_t left = caps[i] - item;
        if (left >= 0 && left < best_left) { best_left = left; best = i; }
    }
    return best;
}
"""
WAT_ADD = (
    '(module (memory (export "memory") 1 1)'
    ' (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
)


def big_module() -> bytes:
    """About 100 KiB, shaped like a compiled candidate: 1,500 functions, 8 of them exported, and data."""

    def function(i: int) -> str:
        export = f'(export "f{i}") ' if i < 8 else ""
        return (
            f"(func $f{i} {export}(param i32) (result i32)"
            f" (i32.add (i32.mul (local.get 0) (i32.const {i})) (i32.const {i * 7})))"
        )

    functions = "\n".join(function(i) for i in range(1500))
    data = "\\00" * 70_000
    return bytes(
        wasmtime.wat2wasm(
            f'(module (memory (export "memory") 2 2) (data (i32.const 0) "{data}") {functions})'
        )
    )


def bare_rust_compile(rustc: str, workdir: str, command: tuple[str, ...]) -> float:
    """The same rustc command the toolchain ran, without isolation, checks or temp-dir handling."""
    argv = [rustc, *[a for a in command[1:] if not a.startswith("--remap-path-prefix")]]
    started = time.perf_counter()
    subprocess.run(argv, cwd=workdir, check=True, capture_output=True)
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds

    rustc = find_rustc()
    print(f"# pipeline benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" wasmtime {WASMTIME_VERSION}"
    )
    print(f"# {rustc.version}; {rounds} rounds, medians\n")

    # Rust: bare vs isolated, interleaved.
    probe = compile_source(RUST, CodeLanguage.RUST)
    assert probe.ok, probe.log
    bare, isolated = [], []
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "candidate.rs"), "w") as handle:
            handle.write(RUST)
        for _ in range(rounds):
            bare.append(bare_rust_compile(rustc.path, workdir, probe.command))
            started = time.perf_counter()
            result = compile_source(RUST, CodeLanguage.RUST)
            isolated.append(time.perf_counter() - started)
            assert result.ok
    bare_s, isolated_s = statistics.median(bare), statistics.median(isolated)
    print("stage                              median")
    print(f"compile rust, bare rustc        {ms(bare_s)}")
    print(
        f"compile rust, isolated+policy   {ms(isolated_s)}   ratio {isolated_s / bare_s:.3f} (target <= 1.10)"
    )

    for language, source in ((CodeLanguage.C, C), (CodeLanguage.WAT, WAT_ADD)):
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            assert compile_source(source, language, CompileOptions()).ok
            times.append(time.perf_counter() - started)
        print(f"compile {language.value:<4}, isolated+policy   {ms(statistics.median(times))}")

    module = big_module()
    policy = WasmPolicy(required_exports=(ExportSpec("f1", ("i32",), ("i32",)),))
    verify_times, compile_times, instantiate_times, call_times = [], [], [], []
    for _ in range(rounds * 20):
        started = time.perf_counter()
        assert inspect_wasm(module, policy).ok
        verify_times.append(time.perf_counter() - started)
    for _ in range(rounds):
        started = time.perf_counter()
        sandbox = Sandbox(module)
        compile_times.append(time.perf_counter() - started)
    for _ in range(rounds * 20):
        started = time.perf_counter()
        instance = sandbox.instantiate()
        instantiate_times.append(time.perf_counter() - started)
        assert instance.startup.ok
        started = time.perf_counter()
        assert instance.call("f3", 5).values == (36,)
        call_times.append(time.perf_counter() - started)
    verify_s, instantiate_s = statistics.median(verify_times), statistics.median(instantiate_times)
    print(f"\nmodule of {len(module) / 1024:.0f} KiB ({len(module)} bytes):")
    print(f"verify (static checks)          {ms(verify_s)}")
    print(f"wasmtime compile (cached later) {ms(statistics.median(compile_times))}")
    print(f"instantiate (store + limits)    {ms(instantiate_s)}")
    print(f"verify + instantiate            {ms(verify_s + instantiate_s)}   (target <= 5 ms)")
    print(f"one host->wasm call             {ms(statistics.median(call_times))}")


if __name__ == "__main__":
    main()
