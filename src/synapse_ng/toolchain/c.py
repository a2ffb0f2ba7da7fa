"""C → wasm32 with clang and wasm-ld: freestanding, no libc, headers only from clang's own directory."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import CompilerNotFound, TargetMissing
from ..models import CodeLanguage
from .build import REMAPPED_SOURCE_DIR, CompileOptions, compile_in_tempdir
from .inputs import DEPENDENCY_FILE
from .policy import check_c
from .result import CompileResult

SYSTEM_CLANG = "/usr/bin/clang"
INSTALL_HINT = "install clang and the wasm linker: `apt-get install clang lld` (or run scripts/setup.sh)"


@dataclass(frozen=True)
class Clang:
    path: str
    version: str
    resource_dir: str


@functools.lru_cache(maxsize=16)
def find_clang(configured: str | None = None) -> Clang:
    path = shutil.which(configured) if configured else (shutil.which("clang") or shutil.which(SYSTEM_CLANG))
    if path is None:
        where = f"at {configured!r}" if configured else f"on PATH or at {SYSTEM_CLANG}"
        raise CompilerNotFound(f"clang not found {where}: {INSTALL_HINT}")
    env = {"PATH": os.path.dirname(path) + ":/usr/bin:/bin"}

    def ask(*args: str) -> str:
        return subprocess.run([path, *args], capture_output=True, text=True, env=env, timeout=30).stdout

    version = (ask("--version").splitlines() or ["unknown"])[0].strip()
    if "wasm32" not in ask("--print-targets"):
        raise TargetMissing(f"{path} ({version}) cannot target wasm32: {INSTALL_HINT}")
    linker_dirs = f"{os.path.dirname(os.path.realpath(path))}:{env['PATH']}"
    if shutil.which("wasm-ld", path=linker_dirs) is None:
        raise TargetMissing(f"wasm-ld not found beside {path}: {INSTALL_HINT}")
    return Clang(path, version, ask("-print-resource-dir").strip())


# Freestanding C11 for wasm32, optimised; no libc and no system headers: only the freestanding ones clang
# ships (the policy allows five of them), added with -isystem below.
_CLANG_FLAGS = ("--target=wasm32", "-std=c11", "-O3", "-ffreestanding", "-nostdlib", "-nostdinc")


def compile_c(source: str, options: CompileOptions = CompileOptions()) -> CompileResult:
    clang = find_clang(options.clang_path)
    headers = os.path.join(clang.resource_dir, "include")

    def argv(workdir: str) -> list[str]:
        return [
            clang.path,
            *_CLANG_FLAGS,
            "-isystem",
            headers,
            f"-ffile-prefix-map={workdir}={REMAPPED_SOURCE_DIR}",
            "-Wl,--no-entry",
            "-Wl,--strip-all",
            f"-Wl,--max-memory={options.max_memory_pages * 65536}",
            *[f"-Wl,--export-if-defined={name}" for name in options.exports],
            # The files clang read, checked after the compile (inputs.py): the source and its headers.
            *("-MD", "-MF", DEPENDENCY_FILE),
        ]

    return compile_in_tempdir(
        CodeLanguage.C,
        source,
        check_c,
        "candidate.c",
        argv,
        clang.path,
        clang.version,
        options,
        header_dirs=(headers,),
    )
