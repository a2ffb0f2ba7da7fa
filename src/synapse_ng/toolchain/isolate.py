"""Run an untrusted compile as a child process that cannot outlive its limits.

The child gets:
- an empty environment except PATH (so `env!("AWS_SECRET")` has nothing to bake into a binary),
- a fresh working directory chosen by the caller,
- its own process group, so a time-out kills the compiler *and* everything it spawned (the linker),
- rlimits applied by `prlimit` before exec: address space, CPU seconds, file size, no core dumps.

`prlimit` (util-linux) sets the limits in a tiny exec wrapper instead of a `preexec_fn`, which is not
safe in a process that has threads (the engine evaluates candidates from a pool).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from ..errors import ToolchainError

# What a compiler may find on PATH: the system's directories only, plus the compiler's own.
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class ProcessLimits:
    """Resource bounds of one compiler run."""

    timeout_s: float = 60.0
    memory_bytes: int = 4 << 30  # address space; rustc + LLVM stay well under this
    max_file_bytes: int = 256 << 20  # no output file (or runaway log) beyond this


@dataclass(frozen=True)
class ProcessOutcome:
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool
    killed_by_signal: int | None

    @property
    def log(self) -> str:
        return (self.stdout + self.stderr).strip()


def _prlimit() -> str:
    path = shutil.which("prlimit", path=BASE_PATH)
    if path is None:
        raise ToolchainError(
            "prlimit not found: it bounds the compiler's memory and CPU. "
            "Install it with `apt-get install util-linux` (or run scripts/setup.sh)."
        )
    return path


def run_isolated(
    argv: list[str], cwd: str, limits: ProcessLimits, extra_path: str | None = None
) -> ProcessOutcome:
    """Run argv in cwd under limits; never raises for the child's own failures."""
    cpu_seconds = max(1, int(limits.timeout_s) + 1)
    wrapped = [
        _prlimit(),
        f"--as={limits.memory_bytes}",
        f"--cpu={cpu_seconds}",
        f"--fsize={limits.max_file_bytes}",
        "--core=0",
        "--",
        *argv,
    ]
    path = BASE_PATH if not extra_path else f"{extra_path}:{BASE_PATH}"
    started = time.monotonic()
    proc = subprocess.Popen(
        wrapped,
        cwd=cwd,
        env={"PATH": path},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own process group: killpg reaches the linker too
        text=True,
        errors="replace",
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        stdout, stderr = proc.communicate()
    finally:
        # Whatever happened, nothing of this compile may keep running.
        _kill_group(proc.pid)
    duration = time.monotonic() - started
    signal_number = -proc.returncode if proc.returncode is not None and proc.returncode < 0 else None
    return ProcessOutcome(proc.returncode, stdout, stderr, duration, timed_out, signal_number)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
