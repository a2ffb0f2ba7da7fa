"""A short, real search with the embedded model: its answers are compiled, checked and measured end to end.

Nothing here is scripted: the local provider runs Qwen2.5-Coder-1.5B through llama.cpp. What a 1.5B model
writes is not predictable, so the test asserts what the pipeline must do with any answer, not that the
answer is good: every sample is generated, recorded with its tokens, and either compiled and measured or
refused with its reason.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from synapse_ng.components import get_component
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.llm.registry import create_provider
from synapse_ng.models import LLMProviderConfig

pytestmark = pytest.mark.slow

OUTCOMES = {
    "correct",
    "incorrect",
    "compile_failed",
    "rejected",
    "duplicate",
    "no_code",
    "time_limit",
    "model_failed",
}


def test_a_real_search_goes_on_when_the_model_worker_segfaults_and_records_the_crash(tmp_path):
    """A short real search with the embedded model. Its worker is killed with SIGSEGV in the middle of the
    first generation: that sample is recorded as a failed model call naming the signal, the next sample gets
    a fresh worker whose answer is built, checked and (if correct) measured, and the run ends normally."""
    component = get_component("task_allocation")
    provider = create_provider(LLMProviderConfig("local", timeout_seconds=300))
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        component,
        provider,
        store,
        problem="Use fewer bins than best fit.",
        # No repair call: one real generation after the crash is what this test needs (a repair of the
        # answer would double the test's time; repairs are tested against a scripted model).
        config=SearchConfig(
            islands=1,
            concurrency=1,
            tune_share=0.0,
            repair_tries=0,
            random_cases=4,
            max_new_tokens=200,
            seed=5,
        ),
        budget=Budget(samples=2),
    )
    killed: list[int] = []

    def kill_the_first_generation() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            worker = provider.worker
            if worker is not None and worker.alive and worker.lock.locked():
                time.sleep(1.0)  # well inside the generation
                killed.append(worker.pid)
                os.kill(worker.pid, signal.SIGSEGV)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_generation, daemon=True)
    killer.start()
    result = asyncio.run(search.run())
    killer.join(5)
    assert killed, "the generation was never seen running"
    rows = store.candidates(result.run_id)[1:]
    assert len(rows) == 2
    crashed, after = rows
    assert crashed.status == "model_failed" and crashed.stage == "model"
    assert "SIGSEGV" in crashed.message and f"pid {killed[0]}" in crashed.message
    assert after.status in OUTCOMES - {"model_failed"} and after.tokens_out > 0  # a fresh worker answered
    assert after.provider == "local" and after.tokens_in > 0
    if after.status in ("correct", "incorrect"):
        assert after.wasm_sha256 and after.verification is not None  # compiled, then judged by the cases
    if after.status == "correct":
        assert after.score is not None and after.metrics["workloads"]  # measured on the training workloads
    assert store.candidates(result.run_id)[0].operator == "baseline" and result.reason
    assert provider.worker.pid != killed[0]
    assert store.get_run(result.run_id).status in ("improved", "no_improvement")


def _children(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the live child processes of `pid`, from /proc."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), argv))
    return found


def test_a_node_whose_model_worker_is_killed_stays_up_and_serves_its_api(tmp_path):
    """A real node, the real embedded model: once the engine's model worker is generating, it is killed with
    SIGSEGV. The node process lives on, answers its API, and its engine records the crash and goes on."""
    import random

    from node_helpers import get, send_tasks, start_network, wait_for

    net = start_network(
        tmp_path,
        1,
        evolve=True,
        llm_provider="local",
        evolve_samples=3,
        evolve_minutes=10.0,
        targets={"allocation_excess_pct": 3.0},
        chronic_after=2,
        immune_interval_s=1.0,
    )
    try:
        node_pid = net.processes[0].pid
        rng = random.Random(3)

        def model_worker():
            send_tasks(
                net.url(0),
                [min(100, max(1, round(rng.weibullvariate(45.0, 3.0)))) for _ in range(400)],
                capacity=100,
            )
            workers = [pid for pid, argv in _children(node_pid) if "synapse_ng.llm.model_worker" in argv]
            return workers[0] if workers else None

        worker = wait_for(model_worker, 240, "the engine's model worker")
        time.sleep(3.0)  # loading, then generating
        os.kill(worker, signal.SIGSEGV)
        time.sleep(1.0)
        assert net.processes[0].poll() is None, "the node died with its model worker"
        assert get(net.url(0), "/api/identity")["node_id"]
        assert send_tasks(net.url(0), [50, 50, 30], capacity=100)["bins"] >= 2  # still doing its work
        store = Store(tmp_path / "node0" / "engine")

        def crash_recorded():
            rows = [row for run in store.list_runs() for row in store.candidates(run.run_id)]
            return [row for row in rows if row.status == "model_failed"]

        crashed = wait_for(crash_recorded, 120, "the crash in the engine's store")
        assert "SIGSEGV" in crashed[0].message
        net.check()  # raises NodeFailed if the node exited meanwhile
    finally:
        net.stop()
