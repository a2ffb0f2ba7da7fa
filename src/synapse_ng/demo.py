"""The README's main job: source → verified WASM → sandbox, in every language, with the guards at work.

Every figure printed comes from the run: compile times, sizes, hashes, fuel. The guards are shown by
feeding them hostile programs and printing what stopped each one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .models import CodeLanguage
from .toolchain import CompileOptions, compile_source
from .wasm.inspect import inspect_wasm
from .wasm.policy import ExportSpec, WasmPolicy
from .wasm.sandbox import Sandbox, SandboxLimits

FIB_ARGUMENT = 90
FIB_EXPORT = ExportSpec("fib", ("i32",), ("i64",))
SAMPLES = {CodeLanguage.RUST: "fib.rs", CodeLanguage.C: "fib.c", CodeLanguage.WAT: "fib.wat"}

HOSTILE_RUST = (
    'const SECRET: &str = include_str!("/etc/passwd");\n'
    "#[no_mangle]\n"
    'pub extern "C" fn fib(n: i32) -> i64 { SECRET.len() as i64 + n as i64 }\n'
)
HOSTILE_IMPORT = (
    '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
    " (memory 1 1))"
)
HOSTILE_LOOP = (
    '(module (memory 1 1) (func (export "fib") (param i32) (result i64)'
    " (loop $forever (br $forever)) (i64.const 0)))"
)


def reference_fib(n: int) -> int:
    """The oracle, in Python: wrapping 64-bit arithmetic, read back as signed."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) & 0xFFFFFFFFFFFFFFFF
    return a - (1 << 64) if a >> 63 else a


@dataclass
class SampleRun:
    language: str
    compiled: bool
    status: str
    size: int
    sha256: str | None
    compile_s: float
    verified: bool
    value: int | None
    fuel_used: int | None
    correct: bool
    problem: str = ""


def _run_sample(language: CodeLanguage) -> SampleRun:
    source = files("synapse_ng.samples").joinpath(SAMPLES[language]).read_text()
    compiled = compile_source(source, language, CompileOptions())
    run = SampleRun(
        language.value,
        compiled.ok,
        compiled.status.value,
        compiled.size,
        compiled.sha256,
        compiled.duration_s,
        False,
        None,
        None,
        False,
    )
    if not compiled.ok:
        run.problem = compiled.log
        return run
    assert compiled.wasm is not None  # a successful compile always carries its module
    report = inspect_wasm(compiled.wasm, WasmPolicy(required_exports=(FIB_EXPORT,)))
    run.verified = report.ok
    if not report.ok:
        run.problem = "; ".join(report.reasons)
        return run
    result = Sandbox(compiled.wasm).run("fib", FIB_ARGUMENT)
    run.fuel_used = result.fuel_used
    if not result.ok:
        run.problem = str(result.trap)
        return run
    run.value = result.values[0]
    run.correct = run.value == reference_fib(FIB_ARGUMENT)
    if not run.correct:
        run.problem = f"fib({FIB_ARGUMENT}) = {run.value}, the reference says {reference_fib(FIB_ARGUMENT)}"
    return run


def _guards() -> list[dict]:
    """Each hostile program, and what stopped it. `stopped` is False if a guard failed to act."""
    guards = []
    policy = compile_source(HOSTILE_RUST, CodeLanguage.RUST)
    guards.append(
        {
            "attack": "Rust reading /etc/passwd at compile time (include_str!)",
            "stopped": policy.status.value == "rejected",
            "by": "source policy, before any compiler ran",
            "detail": str(policy.violations[0]) if policy.violations else policy.log,
        }
    )
    wasm = compile_source(HOSTILE_IMPORT, CodeLanguage.WAT).wasm
    assert wasm is not None  # valid WAT: the import is legal WASM, only the policy forbids it
    report = inspect_wasm(wasm, WasmPolicy(required_exports=(FIB_EXPORT,)))
    guards.append(
        {
            "attack": "WAT importing the host's wasi fd_write",
            "stopped": not report.ok,
            "by": "static WASM checks",
            "detail": "; ".join(report.reasons),
        }
    )
    loop_wasm = compile_source(HOSTILE_LOOP, CodeLanguage.WAT).wasm
    assert loop_wasm is not None  # valid WAT: only running it forever is hostile
    loop = Sandbox(loop_wasm, SandboxLimits(fuel=50_000_000)).run("fib", 1)
    guards.append(
        {
            "attack": "an infinite loop",
            "stopped": loop.trap is not None and loop.trap.kind.value == "out_of_fuel",
            "by": "sandbox fuel",
            "detail": str(loop.trap),
        }
    )
    return guards


def _measured_evaluation() -> dict:
    """FunSearch's published Weibull heuristic against best fit, measured on the held-out test sets,
    then its evidence re-run from scratch as another node would."""
    from .components import get_component
    from .evolution import evaluate, reproduce

    component = get_component("task_allocation")
    block = files("synapse_ng.samples").joinpath("funsearch_weibull.rs").read_text()
    evaluation = evaluate(component, block)
    result: dict[str, Any] = {
        "correct": evaluation.correct,
        "message": evaluation.message,
        "workloads": [],
        "reproduced": False,
    }
    for w in evaluation.workloads:
        result["workloads"].append(
            {
                "id": w["id"],
                "baseline_excess_pct": w["baseline"]["excess_pct"],
                "candidate_excess_pct": w["candidate"]["excess_pct"],
                "baseline_bins": w["baseline"]["bins"],
                "candidate_bins": w["candidate"]["bins"],
            }
        )
    if evaluation.correct:
        from .evolution.build import BuiltModule, build_candidate

        built = build_candidate(component, block)
        # a correct evaluation built the same block, and always records its evidence
        assert isinstance(built, BuiltModule) and evaluation.evidence is not None
        result["reproduced"] = reproduce(evaluation.evidence, built.wasm).confirmed
    return result


def run_demo(as_json: bool = False) -> int:
    samples = [_run_sample(language) for language in SAMPLES]
    guards = _guards()
    measured = _measured_evaluation()
    ok = (
        all(sample.correct for sample in samples)
        and all(guard["stopped"] for guard in guards)
        and measured["reproduced"]
    )
    if as_json:
        click.echo(
            json.dumps(
                {"ok": ok, "samples": [vars(s) for s in samples], "guards": guards, "evaluation": measured},
                indent=2,
            )
        )
        return 0 if ok else 1
    console = Console(width=max(Console().width, 120))
    console.print(
        f"[bold]synapse-ng pipeline demo[/bold]: fib({FIB_ARGUMENT}) compiled, verified and run "
        "in each language\n"
    )
    table = Table(
        "language", "compile", "size", "sha256", "verified", f"fib({FIB_ARGUMENT})", "fuel", "correct"
    )
    for s in samples:
        table.add_row(
            s.language,
            f"{s.status} {s.compile_s:.2f}s",
            f"{s.size} B",
            (s.sha256 or "-")[:16],
            "yes" if s.verified else "no",
            str(s.value) if s.value is not None else "-",
            str(s.fuel_used) if s.fuel_used is not None else "-",
            "[green]yes[/green]" if s.correct else f"[red]no[/red] {escape(s.problem)}",
        )
    console.print(table)
    console.print("\n[bold]guards[/bold]: hostile programs and what stopped them")
    for guard in guards:
        mark = "[green]stopped[/green]" if guard["stopped"] else "[red]NOT STOPPED[/red]"
        console.print(
            f"  {mark} {escape(guard['attack'])}\n      by {guard['by']}: {escape(guard['detail'])}"
        )
    console.print(
        "\n[bold]measured evaluation[/bold]: FunSearch's published Weibull heuristic "
        "(as an EVOLVE block) against the "
        "shipped best fit, on the held-out test sets, in one run"
    )
    for w in measured["workloads"]:
        console.print(
            f"  {w['id']:<11} best fit {w['baseline_bins']:8.1f} bins "
            f"({w['baseline_excess_pct']:.2f} % over L1)   "
            f"candidate {w['candidate_bins']:8.1f} bins ({w['candidate_excess_pct']:.2f} %)"
        )
    verdict = "confirmed bit for bit" if measured["reproduced"] else "[red]NOT reproduced[/red]"
    console.print(f"  evidence re-run from scratch (as a voting node would): {verdict}")
    console.print(
        "\n"
        + (
            "[green]all samples correct, every attack stopped, the evidence reproduces[/green]"
            if ok
            else "[red]the demo found a problem[/red]"
        )
    )
    return 0 if ok else 1
