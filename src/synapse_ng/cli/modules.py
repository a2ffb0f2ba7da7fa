"""`compile`, `verify` and `run`: one WebAssembly module by hand, through the same toolchain, static checks
and sandbox that every candidate of the engine goes through."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import errors
from ..errors import UsageError
from ..models import CodeLanguage
from ..toolchain import SOURCE_SUFFIXES, CompileOptions, CompileResult, CompileStatus, compile_source
from ..wasm.inspect import WasmReport, inspect_wasm
from ..wasm.policy import ExportSpec, WasmPolicy
from ..wasm.sandbox import CallResult, Sandbox, SandboxLimits
from .files import read_bytes, read_text, write_file
from .outcomes import result_exit_code
from .output import Output, json_option

LANGUAGES = click.Choice([lang.value for lang in SOURCE_SUFFIXES.values()])

# ------------------------------------------------------------------------------------------- compile


def language_of(path: str, given: str | None) -> CodeLanguage:
    if given:
        return CodeLanguage.from_name(given)
    suffix = Path(path).suffix.lower()
    if suffix not in SOURCE_SUFFIXES:
        known = ", ".join(SOURCE_SUFFIXES)
        raise UsageError(
            f"{path}: cannot tell the language from {suffix or 'no suffix'!r} (known: {known}); "
            "pass --language"
        )
    return SOURCE_SUFFIXES[suffix]


def _describe_compile(source_path: str, out_path: str, result: CompileResult) -> str:
    lines = [
        f"source:   {source_path} ({result.language.value})",
        f"compiler: {result.compiler_version} ({result.compiler})",
    ]
    if result.ok:
        lines += [
            f"output:   {out_path}",
            f"size:     {result.size} bytes",
            f"sha256:   {result.sha256}",
            f"time:     {result.duration_s:.2f} s",
        ]
        if result.log:
            lines += ["compiler output:", result.log]
    elif result.status is CompileStatus.REJECTED:
        lines.append("rejected by the source policy, nothing was compiled:")
        lines += [f"  {violation}" for violation in result.violations]
    else:
        lines += [
            f"compilation {result.status.value} after {result.duration_s:.2f} s; compiler output:",
            result.log,
        ]
    if result.kept_source_dir:
        lines.append(f"sources kept in {result.kept_source_dir}")
    return "\n".join(lines)


@click.command("compile")
@click.argument("src")
@click.option(
    "-o", "--output", "output", help="Where to write the module (default: SRC with a .wasm suffix)."
)
@click.option("--language", type=LANGUAGES, help="Default: from the suffix.")
@click.option("--rustc", "rustc_path", help="The rustc to use (default: PATH, then /usr/bin/rustc).")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=60.0,
    show_default=True,
    help="Compiler time limit in seconds.",
)
@click.option("--keep-source", is_flag=True, help="Keep the temporary build directory and say where it is.")
@json_option()
def compile_command(
    src: str,
    output: str | None,
    language: str | None,
    rustc_path: str | None,
    timeout_s: float,
    keep_source: bool,
    out: Output,
) -> None:
    """Compile a Rust, WAT or C source file to WebAssembly, isolated and policy-checked.

    Exit codes: 0 ok, 1 usage or file error, 2 compiler not found, 3 compilation failed,
    4 wasm32 target missing, 5 rejected by the source policy.
    """
    lang = language_of(src, language)
    source = read_text(src)
    if timeout_s <= 0:
        raise UsageError(f"--timeout must be positive, got {timeout_s}")
    options = CompileOptions(rustc_path=rustc_path, timeout_s=timeout_s, keep_source=keep_source)
    result = compile_source(source, lang, options)
    out_path = output or str(Path(src).with_suffix(".wasm"))
    if result.wasm is not None and result.ok:
        write_file(out_path, result.wasm)
    payload = {**result.to_dict(), "input": src, "output": out_path if result.ok else None}
    out.emit(payload, _describe_compile(src, out_path, result))
    sys.exit(result_exit_code(result))


# -------------------------------------------------------------------------------------------- verify


def _parse_exports(specs: tuple[str, ...]) -> tuple[ExportSpec, ...]:
    try:
        return tuple(ExportSpec.parse(spec) for spec in specs)
    except ValueError as error:
        raise UsageError(f"--export: {error}") from None


def _describe_report(path: str, report: WasmReport) -> str:
    info = report.info
    lines = [f"module:  {path} ({info.size} bytes, sha256 {info.sha256})"]
    if info.exports:
        lines.append(f"exports: {', '.join(info.exports)}")
    if report.ok:
        lines.append("accepted: every static check passed")
    else:
        lines.append(f"rejected ({len(report.reasons)} reason{'s' if len(report.reasons) != 1 else ''}):")
        lines += [f"  - {reason}" for reason in report.reasons]
    return "\n".join(lines)


def _report_dict(path: str, report: WasmReport) -> dict:
    info = report.info
    return {
        "ok": report.ok,
        "file": path,
        "size": info.size,
        "sha256": info.sha256,
        "imports": list(info.imports),
        "exports": list(info.exports),
        "reasons": list(report.reasons),
    }


def _emit_report(out: Output, path: str, report: WasmReport) -> None:
    out.emit(_report_dict(path, report), _describe_report(path, report))


@click.command("verify")
@click.argument("file")
@click.option(
    "--export",
    "exports",
    multiple=True,
    metavar="NAME:PARAMS->RESULTS",
    help="A required export, e.g. add:i32,i32->i32.",
)
@click.option(
    "--allow-import",
    "allowed",
    multiple=True,
    metavar="MOD.NAME",
    help="An import to allow (none by default).",
)
@click.option("--max-bytes", type=int, default=WasmPolicy.max_bytes, show_default=True, help="Size cap.")
@json_option()
def verify_command(
    file: str, exports: tuple[str, ...], allowed: tuple[str, ...], max_bytes: int, out: Output
) -> None:
    """Run the static checks on a WebAssembly module. Exit 0 accepted, 6 rejected (every reason listed)."""
    policy = WasmPolicy(
        max_bytes=max_bytes, allowed_imports=frozenset(allowed), required_exports=_parse_exports(exports)
    )
    report = inspect_wasm(read_bytes(file), policy)
    _emit_report(out, file, report)
    sys.exit(errors.EXIT_OK if report.ok else errors.EXIT_WASM_REJECTED)


# ----------------------------------------------------------------------------------------------- run


def _parse_number(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"argument {text!r} is not a number") from None


def _describe_call(func: str, result: CallResult) -> str:
    fuel = "unknown" if result.fuel_used is None else str(result.fuel_used)
    costs = f"fuel used: {fuel}\nwall time: {result.wall_s * 1000:.3f} ms"
    if result.ok:
        values = " ".join(str(value) for value in result.values) or "(no results)"
        return f"{func} -> {values}\n{costs}"
    return f"{func} trapped: {result.trap}\n{costs}"


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("file")
@click.argument("func")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--fuel",
    type=int,
    default=SandboxLimits.fuel,
    show_default=True,
    help="CPU budget in wasmtime fuel units.",
)
@click.option(
    "--memory-mb",
    type=int,
    default=SandboxLimits.memory_bytes >> 20,
    show_default=True,
    help="Linear memory cap.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=SandboxLimits.timeout_s,
    show_default=True,
    help="Wall-clock cap (s).",
)
@json_option()
def run_command(
    file: str, func: str, args: tuple[str, ...], fuel: int, memory_mb: int, timeout_s: float, out: Output
) -> None:
    """Call an exported function of a checked module in the sandbox. Exit 7 on a trap, naming its kind."""
    data = read_bytes(file)
    numbers = [_parse_number(arg) for arg in args]
    report = inspect_wasm(data, WasmPolicy(max_memory_pages=max(1, memory_mb * 16)))
    if not report.ok:
        _emit_report(out, file, report)
        sys.exit(errors.EXIT_WASM_REJECTED)
    limits = SandboxLimits(fuel=fuel, memory_bytes=memory_mb << 20, timeout_s=timeout_s)
    result = Sandbox(data, limits).run(func, *numbers)
    out.emit({"function": func, "args": numbers, **result.to_dict()}, _describe_call(func, result))
    sys.exit(errors.EXIT_OK if result.ok else errors.EXIT_TRAP)
