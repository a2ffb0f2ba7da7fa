"""The one result type every toolchain returns.

`CompileStatus` is the compiler's own detail (printed by `synapse-ng compile --json`); `.outcome` says
what it means in the package's one vocabulary (`synapse_ng.outcome`), from which the CLI takes its exit
codes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from ..models import CodeLanguage
from ..outcome import Outcome
from .policy import Violation


class CompileStatus(StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # the source policy refused it; no compiler ran
    FAILED = "failed"  # the compiler ran and reported errors
    TIMEOUT = "timeout"  # the compiler was still running at the time limit and was killed
    KILLED = "killed"  # the compiler died on a signal: a memory or CPU limit, as a rule

    @property
    def outcome(self) -> Outcome:
        if self is CompileStatus.OK:
            return Outcome.COMPILED
        return Outcome.REJECTED if self is CompileStatus.REJECTED else Outcome.COMPILE_FAILED


@dataclass(frozen=True)
class CompileResult:
    language: CodeLanguage
    status: CompileStatus
    wasm: bytes | None
    log: str
    duration_s: float
    compiler: str  # the compiler's path
    compiler_version: str
    violations: tuple[Violation, ...] = ()
    kept_source_dir: str | None = None  # set only when asked to keep the sources
    command: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.status is CompileStatus.OK

    @property
    def size(self) -> int:
        return len(self.wasm) if self.wasm is not None else 0

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.wasm).hexdigest() if self.wasm is not None else None

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "status": self.status.value,
            "language": self.language.value,
            "size": self.size,
            "sha256": self.sha256,
            "duration_s": round(self.duration_s, 4),
            "compiler": self.compiler,
            "compiler_version": self.compiler_version,
            "violations": [{"rule": v.rule, "line": v.line, "message": v.message} for v in self.violations],
            "log": self.log,
            "kept_source_dir": self.kept_source_dir,
        }
