"""The README's main job, `synapse-ng demo`, end to end as a real command: node processes, load, the
immune system, the engine, governance and the rollout. The model is a loopback server speaking the
OpenAI wire protocol that answers with the gap-penalty block (the embedded model's own runs are in
benchmarks/evolution.py: they take minutes, not seconds)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from llm_servers import LoopbackServer, Ok, OpenAIWire, Reply, scripted_model_options
from node_helpers import GAP_PENALTY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def test_the_demo_tells_the_whole_story_and_ends_with_the_upgrade_live_everywhere(tmp_path):
    server = LoopbackServer(OpenAIWire(), Ok(text=f"```rust\n{GAP_PENALTY}\n```"))
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse_ng.cli",
                "demo",
                "--nodes",
                "3",
                *scripted_model_options(server),
                "--minutes",
                "0.5",
                "--deadline",
                "20",
                "--window",
                "2",
                "--data",
                str(tmp_path / "net"),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        server.close()
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    for step in ("1. load", "2. immune system", "3. proposal", "4. governance", "5. rollout", "6. after"):
        assert step in out, (step, out[-2000:])
    assert "approved (3 yes, 0 no of 3" in out
    before, after = (
        int(x)
        for x in re.search(r"the same probe on node 0: (\d+) bins .* against (\d+) bins", out).groups()[::-1]
    )
    assert after < before
    assert "deployed on every node" in out and "live on 3/3 nodes" in out
    assert (tmp_path / "net" / "node0" / "node.sqlite3").exists()


def test_sigterm_stops_the_demo_and_its_whole_network(tmp_path):
    import signal

    import httpx

    server = LoopbackServer(OpenAIWire(), Ok(text="no code here"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synapse_ng.cli",
            "demo",
            "--nodes",
            "2",
            *scripted_model_options(server),
            "--data",
            str(tmp_path / "net"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not any("1. load" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        urls = [line.split()[2] for line in lines if line.strip().startswith("node ")]
        assert len(urls) == 2 and httpx.get(urls[0] + "/api/identity", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=60)[0]
    finally:
        server.close()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and "network stopped" in rest, rest[-2000:]
    for url in urls:
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/api/identity", timeout=2)


def _pid_of_node(data_dir) -> int:
    """The pid of the `synapse-ng node run --data DATA_DIR` process (found through /proc)."""
    from pathlib import Path

    wanted = str(data_dir)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"node" in argv and b"run" in argv and wanted.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no node process for {wanted}")


def _start_demo(tmp_path, server, nodes: int) -> tuple[subprocess.Popen, list[str], list[str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synapse_ng.cli",
            "demo",
            "--nodes",
            str(nodes),
            *scripted_model_options(server),
            "--minutes",
            "0.5",
            "--data",
            str(tmp_path / "net"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    while not any("1. load" in line for line in lines):
        line = process.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    urls = [line.split()[2] for line in lines if line.strip().startswith("node ")]
    return process, lines, urls


def test_a_node_killed_mid_run_is_reported_and_the_demo_stops_cleanly(tmp_path):
    import signal

    import httpx

    server = LoopbackServer(OpenAIWire(), Ok(text="no code here"))
    process = None
    try:
        process, _lines, urls = _start_demo(tmp_path, server, nodes=3)
        victim = _pid_of_node(tmp_path / "net" / "node1")
        import os

        os.kill(victim, signal.SIGKILL)
        rest = process.communicate(timeout=90)[0]
    finally:
        server.close()
        if process is not None and process.poll() is None:
            process.kill()
    assert process.returncode == 10, rest[-3000:]
    assert f"node 1 ({urls[1]}) was killed by signal SIGKILL" in rest, rest[-3000:]
    assert f"the last lines of {tmp_path / 'net' / 'node1' / 'node.log'}" in rest
    assert "listening on" in rest.split("the last lines of")[1]  # the node's own log lines are quoted
    assert "stopping the other nodes" in rest and "network stopped" in rest
    assert "Traceback" not in rest
    for url in (urls[0], urls[2]):  # the others were shut down, not orphaned
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/api/identity", timeout=2)


def test_a_node_whose_engine_fails_is_reported_and_the_demo_stops(tmp_path):
    """The model refuses every call (a 401): the engine gives up, and the story says so instead of waiting."""
    server = LoopbackServer(
        OpenAIWire(), Reply(401, {"error": {"message": "invalid api key", "type": "auth"}})
    )
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse_ng.cli",
                "demo",
                "--nodes",
                "2",
                *scripted_model_options(server),
                "--minutes",
                "5",
                "--data",
                str(tmp_path / "net"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.close()
    out = done.stdout
    assert done.returncode == 10, out[-3000:] + done.stderr[-2000:]
    assert "could not run its Evolutionary Engine for task_allocation:allocation_excess_pct" in out, out[
        -3000:
    ]
    assert re.search(r"the model failed \d+ times in a row", out) and "401" in out
    assert "stopping the other nodes" in out and "network stopped" in out
