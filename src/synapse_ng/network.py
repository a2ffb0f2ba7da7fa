"""A local network of node processes on loopback: `synapse-ng network up`, the demo, the tests and the
network benchmark all start nodes this way, as real processes talking real HTTP.

    net = LocalNetwork(root, nodes=5, overrides={...})
    net.prepare()        identities and operator tokens first, then every node's members.json (the genesis
                         member list) and node.json (ports, peers)
    net.operator_headers(i)   the header that node i's operator routes ask for
    net.start()          one `synapse-ng node run` process per node, logs in root/nodeN/node.log
    net.wait_ready()     until every node answers /api/identity
    net.kill(i) / net.restart(i) / net.stop()
    net.check()          raises NodeFailed if a node this network started has exited on its own, naming it,
                         how it ended (exit code or signal) and the last lines of its log
    net.check_engines()  raises NodeFailed if a node reports that its Evolutionary Engine failed

A network prepared once keeps its identities, ports and state: `start` after `stop` resumes it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .errors import EXIT_NODE_DIED, SynapseError, UsageError
from .node.config import CONFIG_FILE, MEMBERS_FILE, NodeConfig
from .node.identity import Identity
from .node.operator import bearer, operator_token
from .settings import NODE_VARIABLES
from .workers import describe_exit

STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 15


class NodeFailed(SynapseError):
    """A node of a local network ended while it should have been running, or its engine failed."""

    exit_code = EXIT_NODE_DIED

    def __init__(self, index: int, url: str, what: str, log: Path, tail: list[str]):
        quoted = "\n  ".join(tail) if tail else "(the log is empty)"
        super().__init__(f"node {index} ({url}) {what}; the last lines of {log}:\n  {quoted}")
        self.index = index
        self.what = what
        self.tail = tail


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last `lines` non-empty lines of a log file (reading at most its last 64 KiB)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 65536))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalNetwork:
    def __init__(
        self,
        root: Path,
        nodes: int = 3,
        *,
        base_port: int | None = None,
        overrides: dict | None = None,
        env: dict | None = None,
    ):
        if not 1 <= nodes <= 64:
            raise UsageError(f"a local network has 1..64 nodes, not {nodes}")
        self.root = Path(root)
        self.count = nodes
        self.base_port = base_port
        self.overrides = overrides or {}
        self.env = env or {}
        self.processes: list[subprocess.Popen | None] = [None] * nodes
        self.ports: list[int] = []
        self.ids: list[str] = []

    def dir(self, index: int) -> Path:
        return self.root / f"node{index}"

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    @property
    def urls(self) -> list[str]:
        return [self.url(i) for i in range(self.count)]

    def token(self, index: int) -> str:
        return operator_token(self.dir(index))

    def operator_headers(self, index: int) -> dict[str, str]:
        return bearer(self.token(index))

    def prepare(self) -> None:
        existing = self.dir(0) / CONFIG_FILE
        if existing.exists():
            self.ports = [
                json.loads((self.dir(i) / CONFIG_FILE).read_text())["port"] for i in range(self.count)
            ]
            self.ids = [
                Identity.load_or_create(self.dir(i) / "identity.key").node_id for i in range(self.count)
            ]
            return
        self.ports = [self.base_port + i if self.base_port else free_port() for i in range(self.count)]
        for i in range(self.count):
            self.dir(i).mkdir(parents=True, exist_ok=True)
        self.ids = [Identity.load_or_create(self.dir(i) / "identity.key").node_id for i in range(self.count)]
        for i in range(self.count):
            operator_token(self.dir(i))
        members = [{"node_id": self.ids[i], "url": self.url(i)} for i in range(self.count)]
        for i in range(self.count):
            (self.dir(i) / MEMBERS_FILE).write_text(json.dumps(members, indent=2) + "\n")
            config = NodeConfig(
                data_dir=str(self.dir(i)),
                port=self.ports[i],
                peers=[self.url(j) for j in range(self.count) if j != i],
            )
            for key, value in self.overrides.items():
                setattr(config, key, value)
            config.save()

    def start(self, indices: list[int] | None = None) -> None:
        for i in indices if indices is not None else range(self.count):
            running = self.processes[i]
            if running is not None and running.poll() is None:
                continue
            with open(self.log(i), "ab") as log:
                self.processes[i] = subprocess.Popen(
                    [sys.executable, "-m", "synapse_ng.cli", "node", "run", "--data", str(self.dir(i))],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=self._node_environment(),
                )

    def _node_environment(self) -> dict[str, str]:
        """This process's environment for a node, without the variables that would override what this
        network set in node.json (its overrides stand as flags would), plus the network's own `env`."""
        overridden = {name for key in self.overrides for name in NODE_VARIABLES.get(key, ())}
        inherited = {name: value for name, value in os.environ.items() if name.upper() not in overridden}
        return {**inherited, **self.env}

    def wait_ready(self, timeout_s: float = 120.0, indices: list[int] | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        for i in indices if indices is not None else range(self.count):
            while True:
                process = self.processes[i]
                if process is not None and process.poll() is not None:
                    raise NodeFailed(
                        i,
                        self.url(i),
                        describe_exit(process.returncode) + " while starting",
                        self.log(i),
                        log_tail(self.log(i)),
                    )
                try:
                    if httpx.get(self.url(i) + "/api/identity", timeout=2.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise UsageError(f"node {i} did not answer within {timeout_s:g} s; see {self.log(i)}")
                time.sleep(0.2)

    def log(self, index: int) -> Path:
        return self.dir(index) / "node.log"

    def check(self) -> None:
        """Raise NodeFailed for the first node this network started that has exited (a node stopped by
        `kill` or `stop` is not watched any more)."""
        for i, process in enumerate(self.processes):
            if process is not None and process.poll() is not None:
                raise NodeFailed(
                    i, self.url(i), describe_exit(process.returncode), self.log(i), log_tail(self.log(i))
                )

    def check_engines(self) -> None:
        """Raise NodeFailed for the first node whose immune system reports an engine failure (an
        "evolve_error": the engine raised, e.g. its model kept failing); a node that does not answer is
        left to `check`."""
        for i in range(self.count):
            if self.processes[i] is None:
                continue
            try:
                actions = httpx.get(self.url(i) + "/api/health/issues", timeout=10).json()["actions"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            for action in actions:
                if action["kind"] == "evolve_error":
                    what = (
                        f"could not run its Evolutionary Engine for {action['issue_key']}: {action['detail']}"
                    )
                    raise NodeFailed(i, self.url(i), what, self.log(i), log_tail(self.log(i)))

    def kill(self, index: int) -> None:
        """SIGKILL: no clean-up at all, as a crash."""
        process = self.processes[index]
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.processes[index] = None

    def restart(self, index: int) -> None:
        self.start([index])
        self.wait_ready(indices=[index])

    def stop(self) -> None:
        """SIGTERM to every node (uvicorn shuts down cleanly), SIGKILL to any still alive
        after a grace period."""
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for i, process in enumerate(self.processes):
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.processes[i] = None

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
