"""The Ray executor on a real local Ray instance: the search's evaluations run as Ray tasks.

The Ray driver lives in a process of its own (tests/ray_scenario.py): Ray installs fatal-signal handlers
that pre-empt wasmtime's trap handling in the driver's process, which would kill this test process at the
next sandboxed trap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_ng.components import Split, get_component
from synapse_ng.errors import UsageError
from synapse_ng.evolution import build_candidate, evaluate
from synapse_ng.evolution.executors import create_executor
from synapse_ng.models import CodeLanguage

SCENARIO = Path(__file__).parent / "ray_scenario.py"
SORTED_TALLY = (
    (Path(__file__).parent / "test_cli_components.py")
    .read_text()
    .split('SORTED_TALLY = r"""')[1]
    .split('"""')[0]
)


@pytest.mark.slow
def test_a_search_evaluates_its_candidates_as_ray_tasks_with_the_same_figures(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCENARIO), str(tmp_path / "ws")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "search improved=True status=correct" in done.stdout
    assert re.search(r"nodes=[1-9]", done.stdout)
    worker = re.search(
        r"evaluated_by=ray node \w+ worker pid (\d+) driver_pid=(\d+) correct=True", done.stdout
    )
    assert worker and worker.group(1) != worker.group(2)  # measured in a Ray worker, not in the driver
    remote_fuel = [int(f) for f in re.search(r"fuel=([\d,]+)", done.stdout).group(1).split(",")]
    component = get_component("raft_consensus")
    local = evaluate(
        component,
        SORTED_TALLY,
        CodeLanguage.RUST,
        Split.TRAIN,
        random_cases=3,
        built=build_candidate(component, SORTED_TALLY),
    )
    # Fuel is deterministic: the cluster measures exactly what this machine measures.
    assert remote_fuel == [w["candidate"]["fuel"] for w in local.workloads]


def test_executor_arguments_are_checked():
    with pytest.raises(UsageError, match="--ray-address goes with --executor ray"):
        create_executor("local", "auto")
    with pytest.raises(UsageError, match="unknown executor"):
        create_executor("dask")
