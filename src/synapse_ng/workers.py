"""Worker processes started through this package's own entry point, never by re-importing the caller.

    run_in_worker(function, job, time_limit_s) -> result | None     None: killed at the time limit
    python -m synapse_ng.workers REQUEST_FD REPLY_FD                 the worker side

multiprocessing's "spawn" re-imports the caller's `__main__` in every worker; a user's script without a
main guard (the seed's own test script calls `asyncio.run()` at top level) then runs again inside each
worker. Here a worker is a fresh `python -m synapse_ng.workers` process: it reads the caller's
sys.path, then (function, job), from a pipe, runs `function(job)` and writes the result back, so it
works whatever the caller's `__main__` is (a script, `python -`, `python -c`, a notebook). `function`
must be importable by name (a module-level function); the caller's sys.path goes along so test modules
resolve too.

The worker runs in its own process group with a time limit that kills the group, and optional
resource limits (address space, CPU seconds) set before it starts; a crash, a hang or a runaway
allocation ends the worker, never the caller.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


def package_env() -> dict[str, str]:
    """The environment for a child that runs `python -m synapse_ng...`: this one, with the directory
    holding this package first on PYTHONPATH, so the child imports the same synapse_ng even when the
    caller found it through its own sys.path (a source checkout) rather than an installation."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _PACKAGE_PARENT not in paths:
        env["PYTHONPATH"] = os.pathsep.join([_PACKAGE_PARENT, *paths])
    return env


@dataclass(frozen=True)
class Limits:
    """Resource limits of a worker; None leaves one unlimited."""

    address_space_bytes: int | None = None
    cpu_seconds: int | None = None

    def apply(self) -> None:  # runs in the child, before exec
        if self.address_space_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (self.address_space_bytes, self.address_space_bytes))
        if self.cpu_seconds is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def describe_exit(returncode: int | None) -> str:
    """How a process ended, in words: 'was killed by signal SIGSEGV (segmentation fault)', 'exited with
    code 3'."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        description = (signal.strsignal(number) or "").lower()
        return (
            f"was killed by signal {name} ({description})" if description else f"was killed by signal {name}"
        )
    return f"exited with code {returncode}"


def run_in_worker(function, job, time_limit_s: float, *, limits: Limits | None = None):
    """function(job) in a fresh worker process: its result, or None if it was killed at the time limit.

    An exception inside the worker comes back as {"error": traceback} (the caller decides); a worker
    that dies without an answer (a crash, a resource limit) comes back as {"error": ...} naming how."""
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty worker never blocks on it
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "synapse_ng.workers", str(request_read), str(reply_write)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            pass_fds=(request_read, reply_write),
            env=package_env(),
            start_new_session=True,  # a time-out kills the whole group
            preexec_fn=limits.apply if limits is not None else None,
        )
    finally:
        os.close(request_read)
        os.close(reply_write)
    requests = Connection(request_write, readable=False)
    replies = Connection(reply_read, writable=False)
    try:
        try:
            # The caller's sys.path goes first, on its own: the function's module (and the classes in the
            # job) may only resolve with it in place, and pickle imports them while loading.
            requests.send_bytes(pickle.dumps(list(sys.path)))
            requests.send_bytes(pickle.dumps((function, job), protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            pass  # the worker is already gone: reported below
        requests.close()
        try:
            if replies.poll(time_limit_s):
                return pickle.loads(replies.recv_bytes())
        except (EOFError, OSError):
            pass
        else:
            return None  # the time limit: killed in the finally below
        returncode = process.wait()
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - 4000))
        output = stderr.read().decode("utf-8", "replace")
        ended = describe_exit(returncode)
        return {
            "error": f"the worker died without an answer (it {ended}); the runtime crashed\n{output}".rstrip()
        }
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
        stderr.close()
        replies.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    requests = Connection(int(argv[0]), writable=False)
    replies = Connection(int(argv[1]), readable=False)
    try:
        paths = pickle.loads(requests.recv_bytes())
        payload = requests.recv_bytes()
    except EOFError:
        return 0
    requests.close()
    sys.path[:] = paths + [p for p in sys.path if p not in paths]
    try:
        function, job = pickle.loads(payload)
        result = function(job)
    except BaseException:  # report everything: the parent decides
        result = {"error": traceback.format_exc()}
    replies.send_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    replies.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
