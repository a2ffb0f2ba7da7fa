"""The parent's side of a model worker: llama.cpp in a process of its own (`model_worker.py` is the
child), started on first use, shared by every LocalProvider of this process that uses the same model,
and stopped with this process (or `stop_model_workers()`).

    worker = model_worker(path)            # the shared worker for this model file
    text, timings, finish = worker.generate(...)   # see ModelWorker.generate

Native code stays out of this process: if the worker dies (a segmentation fault, an abort, the
out-of-memory killer), the call raises an LLMError that names the signal or exit code, the model file
and the worker's last lines of stderr, and the next call starts a fresh worker. A deadline really stops a
generation: the worker checks it after every token and inside llama.cpp's prompt evaluation; a worker
that does not stop within KILL_GRACE_S of it (hung in native code) is killed.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import SynapseError
from ..settings import settings
from ..workers import describe_exit, package_env
from .base import LLMError

logger = logging.getLogger(__name__)

PROVIDER_NAME = "local"  # the provider these workers serve, named in their errors
DEFAULT_N_CTX = 8192  # room for ~6k-token prompts plus an answer
LOAD_TIMEOUT_S = 300.0  # a worker that has not loaded its model by then is killed
KILL_GRACE_S = 5.0  # past its deadline, a worker that has not stopped is killed
STDERR_LINES = 200  # the worker's last stderr lines kept; the last few are quoted when it dies
POLL_S = 0.05


# Whether llama.cpp may put weights in its "extra" CPU buffer types (repacked layouts for its AVX2/AVX-512
# kernels, and AMX on CPUs that have it). Off by default: the AMX one segfaulted on a Xeon with AMX, and
# with one generation thread the repacked layouts evaluate prompts 1.5x slower for at most 6 % faster
# generation (BENCHMARKS.md). SYNAPSE_LLAMA_EXTRA_BUFTS=1 turns them on (set-up leaves the AMX variant out
# of llama.cpp regardless).
def extra_buffer_types_wanted() -> bool:
    return settings().llama_extra_bufts


def available_cpus() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """Threads that generate tokens: half the CPUs (llama-cpp-python's own default). On 2 cores one thread
    generates as fast as two on an idle machine and faster beside the engine's other work (BENCHMARKS.md);
    the prompt is evaluated with every CPU."""
    return max(1, available_cpus() // 2)


def _worker_env() -> dict[str, str]:
    env = package_env()
    # llama.cpp's OpenMP threads spin a while between operations before they sleep. Beside one busy
    # process (the engine compiling and evaluating the other sample) that spinning made generation 60x
    # slower on 2 cores; waiting passively avoids it (BENCHMARKS.md). A value set by the user wins; an
    # empty one means OpenMP's own default.
    policy = env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not policy:
        del env["OMP_WAIT_POLICY"]
    return env


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class GenerationStopped(SynapseError):
    """A generation stopped before its answer: its deadline passed or its caller cancelled it."""

    def __init__(self, tokens_out: int, where: str):
        super().__init__(f"the generation stopped while {where}, after {tokens_out} tokens")
        self.tokens_out = tokens_out
        self.where = where


def _exit_hint(returncode: int | None) -> str:
    if returncode == -signal.SIGKILL:
        return (
            "SIGKILL usually means the kernel's out-of-memory killer (see `dmesg`) or someone killed it; "
            "free memory or use a smaller model"
        )
    if returncode is not None and returncode < 0:
        return (
            "this is a crash in llama.cpp's native code, contained in the worker; "
            "run `synapse-ng doctor` to check the llama.cpp build against this CPU, "
            "and rebuild it with `bash scripts/setup.sh` if it is not the portable one"
        )
    return "run `synapse-ng doctor` to check the model and the llama.cpp build"


class ModelWorker:
    """One model worker process and the two pipes to it. Thread-safe: calls are serialised."""

    _ids = itertools.count(1)

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        extra_buffer_types: bool | None = None,
    ):
        self.path = Path(path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.extra_buffer_types = (
            extra_buffer_types_wanted() if extra_buffer_types is None else extra_buffer_types
        )
        self.lock = threading.Lock()  # held for a generation (or a start)
        self.process: subprocess.Popen | None = None
        self.info: dict = {}  # what the worker reported when ready
        self.starts = 0
        self.crashes: list[str] = []  # what each dead worker was, newest last
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_thread: threading.Thread | None = None
        self._waiting = 0
        self._state_lock = threading.Lock()

    # ------------------------------------------------------------------------------ life cycle

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def busy(self) -> bool:
        """True while a generation runs, or a call waits for one to end."""
        return self._waiting > 0 or self.lock.locked()

    def start(self) -> dict:
        """Start the worker and wait until its model is loaded (no-op while one is alive)."""
        with self.lock:
            return self._ensure_started()

    def _ensure_started(self) -> dict:
        if self.alive and self.info:
            return self.info
        self._discard()
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "synapse_ng.llm.model_worker", str(request_read), str(reply_write)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, reply_write),
                env=_worker_env(),
                start_new_session=True,  # a Ctrl-C at the terminal is the parent's to handle
            )
        finally:
            os.close(request_read)
            os.close(reply_write)
        self.starts += 1
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)
        self._stderr.clear()
        self._stderr_thread = threading.Thread(target=self._drain_stderr, args=(self.process,), daemon=True)
        self._stderr_thread.start()
        options = {
            "path": str(self.path),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": available_cpus(),
            "extra_buffer_types": self.extra_buffer_types,
        }
        self._requests.send(options)
        reply = self._receive(time.monotonic() + LOAD_TIMEOUT_S, during="loading the model")
        if reply is None:
            self._kill()
            raise self._died(
                f"did not load {self.path} within {LOAD_TIMEOUT_S:g} s and was killed", retryable=True
            )
        if "load_error" in reply:
            self._discard()
            raise LLMError(
                f"local: llama.cpp cannot load {self.path} ({reply['load_error']}{self._last_words()}); "
                "is it a complete GGUF "
                "model? For the embedded model run `synapse-ng model install --reverify`",
                provider=PROVIDER_NAME,
                url=str(self.path),
            )
        self.info = reply["ready"]
        logger.info(
            "model worker pid %d loaded %s in %.2f s (%d threads)",
            self.process.pid,
            self.path.name,
            self.info["load_s"],
            self.n_threads,
        )
        return self.info

    def _drain_stderr(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None  # started with stdout=PIPE
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                logger.debug("model worker %d: %s", process.pid, line)

    def _receive(
        self,
        until: float,
        *,
        during: str,
        cancel: threading.Event | None = None,
        request_id: int | None = None,
    ):
        """The worker's next reply; None if `until` passed first. Raises LLMError if the worker died."""
        cancel_sent = False
        while True:
            replies = self._replies
            try:
                if replies is None:  # discarded meanwhile (close()): as gone as a closed pipe
                    raise EOFError
                if replies.poll(POLL_S):
                    return replies.recv()
            except (EOFError, OSError):
                raise self._died(f"died while {during}", retryable=True) from None
            if cancel is not None and cancel.is_set() and not cancel_sent and request_id is not None:
                self._send({"op": "cancel", "id": request_id})
                cancel_sent = True
                until = min(until, time.monotonic() + KILL_GRACE_S)
            if time.monotonic() >= until:
                return None

    def _send(self, message: dict) -> None:
        requests = self._requests
        try:
            if requests is None:  # discarded meanwhile (close()): as gone as a closed pipe
                raise BrokenPipeError
            requests.send(message)
        except (BrokenPipeError, OSError):
            raise self._died("was gone when asked", retryable=True) from None

    def chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None,
        timeout_s: float,
        cancel: threading.Event,
    ) -> dict:
        """One chat completion in the worker: {"response", "timings"}; GenerationStopped at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._state_lock:
            self._waiting += 1
        try:
            if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise GenerationStopped(0, "waiting")
        finally:
            with self._state_lock:
                self._waiting -= 1
        try:
            if cancel.is_set():
                raise GenerationStopped(0, "waiting")
            self._ensure_started()
            request_id = next(self._ids)
            self._send(
                {
                    "op": "chat",
                    "id": request_id,
                    "messages": messages,
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "seed": seed,
                    "timeout_s": max(0.0, deadline - time.monotonic()),
                }
            )
            reply = self._receive(
                deadline + KILL_GRACE_S, during="generating", cancel=cancel, request_id=request_id
            )
            if reply is None:
                self._kill()
                raise self._died(
                    f"did not stop within {KILL_GRACE_S:g} s of its deadline and was killed", retryable=True
                )
            if "stopped" in reply:
                raise GenerationStopped(reply["stopped"]["tokens_out"], reply["stopped"]["where"])
            if "error" in reply:
                raise LLMError(
                    f"local: {reply['error']}"
                    + (
                        f"; shorten the prompt, or use a larger n_ctx (now {self.n_ctx:d})"
                        if reply["kind"] == "value"
                        else ""
                    ),
                    provider=PROVIDER_NAME,
                    url=str(self.path),
                )
            return reply
        finally:
            self.lock.release()

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()

    def _died(self, what: str, *, retryable: bool) -> LLMError:
        """The error for a worker that is gone; the worker is discarded (the next call starts a fresh one)."""
        process = self.process
        returncode = None
        if process is not None:
            try:
                returncode = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
                returncode = process.returncode
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        exit_text = describe_exit(returncode)
        pid = process.pid if process is not None else "?"
        summary = f"model worker (pid {pid}) for {self.path} {what}; it {exit_text}"
        self.crashes.append(summary)
        message = (
            f"local: the {summary}{self._last_words()}. {_exit_hint(returncode)}; "
            "the next call starts a fresh worker"
        )
        logger.warning("%s", message)
        self._discard()
        return LLMError(message, provider=PROVIDER_NAME, url=str(self.path), retryable=retryable)

    def _last_words(self) -> str:
        """The worker's last lines of stderr; after a crash, the line that says which (faulthandler's
        "Fatal Python error: ...") is kept even when the stacks it prints push it out of the tail."""
        lines = list(self._stderr)
        if not lines:
            return " (it wrote nothing to stderr)"
        tail = lines[-10:]
        fatal = next((line for line in lines if line.startswith("Fatal Python error")), None)
        if fatal is not None and fatal not in tail:
            tail = [fatal, "...", *tail]
        return "; its last lines of stderr:\n  " + "\n  ".join(tail) + "\n"

    def _discard(self) -> None:
        self._kill()
        for conn in (self._requests, self._replies):
            if conn is not None:
                conn.close()
        self._requests = self._replies = None
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        self.info = {}

    def close(self) -> None:
        """Stop the worker: close its pipe (it exits), and kill it if it does not within a second."""
        with self._state_lock:
            process = self.process
        if process is None:
            return
        if self._requests is not None:
            try:
                self._requests.close()
            except OSError:
                pass
            self._requests = None
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        self._discard()


_WORKERS: dict[tuple[str, int, int, bool], ModelWorker] = {}
_WORKERS_LOCK = threading.Lock()


def model_worker(
    path: str | os.PathLike,
    *,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    extra_buffer_types: bool | None = None,
) -> ModelWorker:
    """The worker for this model, shared by the whole process (not started until first used)."""
    resolved = Path(path).resolve()
    threads = n_threads or default_threads()
    extra = extra_buffer_types_wanted() if extra_buffer_types is None else extra_buffer_types
    key = (str(resolved), n_ctx, threads, extra)
    with _WORKERS_LOCK:
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = ModelWorker(
                resolved, n_ctx=n_ctx, n_threads=threads, extra_buffer_types=extra
            )
        return worker


def model_workers() -> list[ModelWorker]:
    with _WORKERS_LOCK:
        return list(_WORKERS.values())


def stop_model_workers() -> None:
    """Stop every model worker of this process (the next call starts a fresh one)."""
    with _WORKERS_LOCK:
        workers = list(_WORKERS.values())
        _WORKERS.clear()
    for worker in workers:
        worker.close()


atexit.register(stop_model_workers)


@dataclass(frozen=True)
class Timings:
    """How long the worker took: evaluating the prompt, then generating."""

    prompt_tokens: int
    prompt_s: float
    completion_tokens: int
    generation_s: float

    @property
    def prompt_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prompt_s if self.prompt_s > 0 else 0.0

    @property
    def generation_tokens_per_s(self) -> float:
        # The first token comes with the prompt's evaluation; the rate is over the ones after it.
        return (
            (self.completion_tokens - 1) / self.generation_s
            if self.generation_s > 0 and self.completion_tokens > 1
            else 0.0
        )
