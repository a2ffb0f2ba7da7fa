"""Rust → wasm32-unknown-unknown with a rustc that really has the target's standard library."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import CompilerNotFound, TargetMissing
from ..models import CodeLanguage
from .build import REMAPPED_SOURCE_DIR, CompileOptions, compile_in_tempdir
from .inputs import DEPENDENCY_FILE
from .policy import check_rust
from .result import CompileResult

TARGET = "wasm32-unknown-unknown"
SYSTEM_RUSTC = "/usr/bin/rustc"
INSTALL_HINT = (
    "install the wasm32 standard library: `apt-get install rustc libstd-rust-dev-wasm32 lld` "
    "(Debian's rustc), or `rustup target add wasm32-unknown-unknown` (a rustup toolchain), "
    "or run scripts/setup.sh"
)


@dataclass(frozen=True)
class Rustc:
    path: str
    version: str
    target_libdir: str


def _probe(path: str) -> tuple[str, str | None]:
    """(version, target libdir if the wasm32 standard library is installed there)."""
    env = {"PATH": os.path.dirname(path) + ":/usr/bin:/bin"}
    version = subprocess.run(
        [path, "--version"], capture_output=True, text=True, env=env, timeout=30
    ).stdout.strip()
    libdir = subprocess.run(
        [path, "--print", "target-libdir", "--target", TARGET],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    ).stdout.strip()
    # The directory is printed even when the target is not installed: look for its core library.
    has_core = bool(libdir) and bool(glob.glob(os.path.join(libdir, "libcore-*.rlib")))
    return version, libdir if has_core else None


@functools.lru_cache(maxsize=16)
def find_rustc(configured: str | None = None) -> Rustc:
    """The first rustc with the wasm32 target: the configured one, then PATH, then /usr/bin/rustc."""
    candidates: list[str] = []
    if configured:
        resolved = shutil.which(configured)
        if resolved is None:
            raise CompilerNotFound(
                f"rustc not found at {configured!r}: give the path of a rustc binary, or {INSTALL_HINT}"
            )
        candidates.append(resolved)
    on_path = shutil.which("rustc")
    for path in (on_path, SYSTEM_RUSTC):
        if path and os.path.exists(path) and path not in candidates:
            candidates.append(path)
    if not candidates:
        raise CompilerNotFound(f"no rustc found on PATH or at {SYSTEM_RUSTC}: {INSTALL_HINT}")
    without_target = []
    for path in candidates:
        version, libdir = _probe(path)
        if libdir:
            return Rustc(path, version, libdir)
        without_target.append(f"{path} ({version or 'version unknown'})")
    raise TargetMissing(
        f"no rustc with the {TARGET} target; tried {', '.join(without_target)}. To fix it, {INSTALL_HINT}"
    )


# A cdylib for wasm32, optimised as far as rustc goes; no unwinding, no symbols or debug info in the bytes.
_RUSTC_FLAGS = (
    *("--edition=2021", "--crate-type=cdylib", "--crate-name=candidate", f"--target={TARGET}"),
    *("-C", "opt-level=3", "-C", "lto=fat", "-C", "panic=abort", "-C", "codegen-units=1"),
    *("-C", "strip=symbols", "-C", "debuginfo=0"),
)


def compile_rust(source: str, options: CompileOptions = CompileOptions()) -> CompileResult:
    rustc = find_rustc(options.rustc_path)

    def argv(workdir: str) -> list[str]:
        return [
            rustc.path,
            *_RUSTC_FLAGS,
            # A declared maximum, so the static checks can bound memory before anything runs.
            "-C",
            f"link-arg=--max-memory={options.max_memory_pages * 65536}",
            # The temporary directory must not leak into the bytes: the same source, the same hash.
            f"--remap-path-prefix={workdir}={REMAPPED_SOURCE_DIR}",
            # The files and environment variables rustc read, checked after the compile (inputs.py).
            f"--emit=link,dep-info={DEPENDENCY_FILE}",
        ]

    return compile_in_tempdir(
        CodeLanguage.RUST, source, check_rust, "candidate.rs", argv, rustc.path, rustc.version, options
    )
