"""What every compiled language shares: options, and one compile in a fresh temporary directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..models import CodeLanguage
from .inputs import unexpected_inputs
from .isolate import ProcessLimits, run_isolated
from .policy import Violation
from .result import CompileResult, CompileStatus

# The wasm page is 64 KiB; 1024 pages = 64 MiB, the default memory ceiling of a candidate.
DEFAULT_MAX_MEMORY_PAGES = 1024
# Candidates are small programs. A megabyte of source is an attack or a mistake.
MAX_SOURCE_BYTES = 1 << 20
# Where a kept source says it came from inside the binary (paths are remapped for reproducible bytes).
REMAPPED_SOURCE_DIR = "/candidate"


@dataclass(frozen=True)
class CompileOptions:
    rustc_path: str | None = None  # None: search PATH, then /usr/bin/rustc
    clang_path: str | None = None  # None: search PATH, then /usr/bin/clang
    timeout_s: float = 60.0
    memory_bytes: int = 4 << 30
    max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES
    exports: tuple[str, ...] = ()  # C: names to export besides those marked export_name
    keep_source: bool = False

    @property
    def limits(self) -> ProcessLimits:
        return ProcessLimits(timeout_s=self.timeout_s, memory_bytes=self.memory_bytes)


def oversize_violation(source: str) -> Violation | None:
    size = len(source.encode("utf-8", errors="replace"))
    if size <= MAX_SOURCE_BYTES:
        return None
    return Violation(
        "source-size",
        1,
        f"source is {size} bytes, above the {MAX_SOURCE_BYTES}-byte cap; candidates must be small programs",
    )


def screen(source: str, policy) -> list[Violation]:
    """Everything a source is refused for before any compiler runs: its size, then the language's policy."""
    too_big = oversize_violation(source)
    return ([too_big] if too_big else []) + policy(source)


def rejected(
    language: CodeLanguage, violations: list[Violation], compiler: str, version: str
) -> CompileResult:
    log = "rejected by the source policy:\n" + "\n".join(str(v) for v in violations)
    return CompileResult(
        language, CompileStatus.REJECTED, None, log, 0.0, compiler, version, tuple(violations)
    )


def compile_in_tempdir(
    language: CodeLanguage,
    source: str,
    policy,  # (source) -> violations: the language's source policy
    source_name: str,
    build_argv,  # (workdir) -> the compiler and its flags; "-o candidate.wasm SOURCE" is added here
    compiler: str,
    version: str,
    options: CompileOptions,
    header_dirs: tuple[str, ...] = (),  # what the compiler may read besides the source (inputs.py)
) -> CompileResult:
    """Screen the source, then write it into a fresh directory, run the compiler isolated there and collect
    the module. A source the policy refuses never reaches the compiler; a module whose compiler read
    anything else than the source (and `header_dirs`) is refused too (build_argv asks for the record)."""
    violations = screen(source, policy)
    if violations:
        return rejected(language, violations, compiler, version)
    with source_in_tempdir(
        f"synapse-{language.value}-", source, source_name, keep=options.keep_source
    ) as workdir:
        argv = [*build_argv(workdir), "-o", "candidate.wasm", source_name]
        outcome = run_isolated(argv, workdir, options.limits, extra_path=os.path.dirname(compiler))
        output = os.path.join(workdir, "candidate.wasm")
        if outcome.timed_out:
            status = CompileStatus.TIMEOUT
            log = (
                f"compiler stopped: still running after the {options.timeout_s:g} s time limit\n{outcome.log}"
            )
        elif outcome.killed_by_signal is not None:
            status = CompileStatus.KILLED
            log = (
                f"compiler killed by signal {outcome.killed_by_signal}: it hit a resource limit "
                f"(memory {options.memory_bytes >> 20} MiB, CPU {options.timeout_s:g} s)\n{outcome.log}"
            )
        elif outcome.returncode != 0 or not os.path.exists(output):
            status = CompileStatus.FAILED
            log = outcome.log or f"compiler exited with status {outcome.returncode} and wrote no module"
        else:
            status = CompileStatus.OK
            log = outcome.log
        outside = unexpected_inputs(workdir, source_name, header_dirs) if status is CompileStatus.OK else []
        if outside:  # the module is thrown away unread
            status = CompileStatus.REJECTED
            log = "rejected by what the compiler read:\n" + "\n".join(str(v) for v in outside)
        wasm = None
        if status is CompileStatus.OK:
            with open(output, "rb") as handle:
                wasm = handle.read()
        return CompileResult(
            language,
            status,
            wasm,
            log,
            outcome.duration_s,
            compiler,
            version,
            tuple(outside),
            kept_source_dir=workdir if options.keep_source else None,
            command=tuple(argv),
        )


@contextmanager
def source_in_tempdir(prefix: str, source: str, source_name: str, keep: bool = False) -> Iterator[str]:
    """A fresh directory holding `source` as `source_name`, removed afterwards unless `keep`."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    try:
        with open(os.path.join(workdir, source_name), "w", encoding="utf-8") as handle:
            handle.write(source)
        yield workdir
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
