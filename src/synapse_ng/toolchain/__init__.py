"""Source → WebAssembly for every candidate language, behind one call.

    compile_source(source, language, options) -> CompileResult

A candidate's own failures (policy, compile errors, time-outs) come back in the result; a machine
without the right compiler raises CompilerNotFound or TargetMissing.
"""

from __future__ import annotations

from ..errors import CompilerNotFound
from ..models import CodeLanguage
from .build import CompileOptions
from .c import compile_c, find_clang
from .policy import Violation, check_c, check_rust
from .result import CompileResult, CompileStatus
from .rust import compile_rust, find_rustc
from .wat import compile_wat

_COMPILERS = {
    CodeLanguage.RUST: compile_rust,
    CodeLanguage.WAT: compile_wat,
    CodeLanguage.C: compile_c,
}

SOURCE_SUFFIXES = {".rs": CodeLanguage.RUST, ".wat": CodeLanguage.WAT, ".c": CodeLanguage.C}


def compile_source(
    source: str, language: CodeLanguage, options: CompileOptions = CompileOptions()
) -> CompileResult:
    compiler = _COMPILERS.get(language)
    if compiler is None:
        supported = ", ".join(lang.value for lang in _COMPILERS)
        raise CompilerNotFound(
            f"no compiler for {language.value} in this build; supported languages: {supported}"
        )
    return compiler(source, options)


__all__ = [
    "CompileOptions",
    "CompileResult",
    "CompileStatus",
    "SOURCE_SUFFIXES",
    "Violation",
    "check_c",
    "check_rust",
    "compile_source",
    "find_clang",
    "find_rustc",
]
