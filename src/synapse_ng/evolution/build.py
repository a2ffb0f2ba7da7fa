"""A candidate for a component, from text or bytes to a checked module (or the reason it is not one).

    build_candidate(component, block_or_wasm, language) -> BuiltModule | BuildFailure

A failure names the `Stage` it stopped at (shape, policy, compile, verify) and so its `Outcome`; the
search records it, the CLI maps it to an exit code, governance reports it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..components import CandidateShapeError, Component, assemble, split_skeleton
from ..errors import ToolchainError
from ..fsutil import write_atomically
from ..models import CodeLanguage
from ..outcome import Outcome, Stage
from ..settings import settings
from ..toolchain import CompileOptions, CompileStatus, compile_source
from ..toolchain.rustfix import apply_fixes, suggested_fixes
from ..wasm.inspect import inspect_wasm

logger = logging.getLogger(__name__)

WASM_LANGUAGE = "wasm"  # a candidate handed over as a compiled module


@dataclass(frozen=True)
class BuiltModule:
    wasm: bytes
    language: str
    compiler_version: str
    source: str | None  # the assembled program, when built from source

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.wasm).hexdigest()

    def describe(self) -> dict:
        return {
            "sha256": self.sha256,
            "size": len(self.wasm),
            "language": self.language,
            "compiler": self.compiler_version,
        }


@dataclass(frozen=True)
class BuildFailure:
    stage: Stage  # SHAPE, POLICY, COMPILE or VERIFY
    message: str
    log: str = ""

    @property
    def outcome(self) -> Outcome:
        """A compiler that ran and failed, or a refusal (the shape, the policy, the static checks)."""
        return Outcome.COMPILE_FAILED if self.stage is Stage.COMPILE else Outcome.REJECTED


def build_candidate(
    component: Component,
    candidate: str | bytes,
    language: CodeLanguage = CodeLanguage.RUST,
    options: CompileOptions | None = None,
) -> BuiltModule | BuildFailure:
    """Text is an EVOLVE block or a whole program in `language`; bytes are a compiled module."""
    if isinstance(candidate, (bytes, bytearray)):
        module = BuiltModule(bytes(candidate), WASM_LANGUAGE, "", None)
    else:
        if language not in component.languages:
            supported = ", ".join(lang.value for lang in component.languages)
            message = f"{component.name} has no {language.value} skeleton; write the candidate in {supported}"
            return BuildFailure(Stage.SHAPE, message)
        try:
            program = assemble(component.skeleton(language), candidate)
        except CandidateShapeError as error:
            return BuildFailure(Stage.SHAPE, str(error))
        options = options or CompileOptions()
        exports = tuple(spec.name for spec in component.exports)
        options = CompileOptions(
            rustc_path=options.rustc_path,
            clang_path=options.clang_path,
            timeout_s=options.timeout_s,
            memory_bytes=options.memory_bytes,
            max_memory_pages=component.max_memory_pages,
            exports=exports,
            keep_source=options.keep_source,
        )
        compiled = compile_source(program, language, options)
        _log_compile(compiled)
        if compiled.status is CompileStatus.REJECTED:
            reasons = "; ".join(str(v) for v in compiled.violations)
            return BuildFailure(Stage.POLICY, "rejected by the source policy: " + reasons, compiled.log)
        if not compiled.ok or compiled.wasm is None:
            return BuildFailure(Stage.COMPILE, f"compilation {compiled.status.value}", compiled.log)
        module = BuiltModule(compiled.wasm, language.value, compiled.compiler_version, program)
    report = inspect_wasm(module.wasm, component.wasm_policy())
    if not report.ok:
        return BuildFailure(Stage.VERIFY, "the module failed the static checks: " + "; ".join(report.reasons))
    return module


def _log_compile(compiled) -> None:
    """The seed's line per compile: what was compiled, how it ended and how long it took."""
    if compiled.ok and compiled.wasm is not None:
        logger.info(
            "compiled %s to WASM in %.2fs: %d bytes",
            compiled.language.value,
            compiled.duration_s,
            len(compiled.wasm),
        )
    else:
        logger.info(
            "compilation of %s %s after %.2fs",
            compiled.language.value,
            compiled.status.value,
            compiled.duration_s,
        )


def autofix_block(
    component: Component, block: str, language: CodeLanguage, options: CompileOptions | None = None
) -> str | None:
    """The block with rustc's MachineApplicable suggestions applied (toolchain/rustfix.py), or None when
    there is nothing to apply: not Rust, a shape error, or no such suggestion inside the block. Fixes
    rustc suggests in the harness around the block are never applied; the harness is not the
    candidate's to change."""
    if language is not CodeLanguage.RUST:
        return None
    skeleton = component.skeleton(language)
    try:
        program = assemble(skeleton, block)
    except CandidateShapeError:
        return None
    head, _, tail = split_skeleton(skeleton)
    start = len(head.encode("utf-8"))
    end = len(program.encode("utf-8")) - len(tail.encode("utf-8"))
    fixed = apply_fixes(program, suggested_fixes(program, options), (start, end))
    if fixed == program:
        return None
    fixed_block = split_skeleton(fixed)[1].strip("\n")
    return fixed_block if fixed_block != block.strip("\n") else None


@functools.lru_cache(maxsize=16)
def build_baseline(component: Component, language: CodeLanguage = CodeLanguage.RUST) -> BuiltModule:
    """Version 0: the skeleton as shipped, compiled by this machine's toolchain.

    Rust baselines are cached on disk, keyed by the compiler (path and version), the skeleton and the
    build settings: every node process needs all three baselines at start, and the compiler is
    deterministic, so the cache gives the very bytes a compile would (it is re-hashed on every read)."""
    cache = _baseline_cache_path(component, language)
    if cache is not None and cache.exists():
        try:
            record = json.loads(cache.read_text())
            wasm = bytes.fromhex(record["wasm"])
            intact = hashlib.sha256(wasm).hexdigest() == record["sha256"]
            if intact and inspect_wasm(wasm, component.wasm_policy()).ok:
                return BuiltModule(wasm, language.value, record["compiler"], component.skeleton(language))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged entry is rebuilt below
    built = build_candidate(component, component.skeleton(language), language)
    if isinstance(built, BuildFailure):
        raise ToolchainError(
            f"the {component.name} baseline does not build here ({built.stage}): {built.message}\n{built.log}"
        )
    if cache is not None:
        record = {"sha256": built.sha256, "compiler": built.compiler_version, "wasm": built.wasm.hex()}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(cache, json.dumps(record).encode())
        except OSError:
            pass  # no cache: the next process compiles again
    return built


def _baseline_cache_path(component: Component, language: CodeLanguage) -> Path | None:
    if language is not CodeLanguage.RUST:
        return None
    from ..toolchain.rust import find_rustc

    try:
        rustc = find_rustc()
    except ToolchainError:
        return None
    exports = ",".join(spec.name for spec in component.exports)
    pages = str(component.max_memory_pages)
    key = "\n".join([rustc.path, rustc.version, pages, exports, component.skeleton(language)])
    root = settings().default_cache_dir() / "baselines"
    return root / f"{component.name}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
