"""The Ray executor on a real local Ray instance: the search's evaluations run as Ray tasks."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from llm_servers import LoopbackServer, Ok, OpenAIWire

from synapse_ng.components import get_component
from synapse_ng.errors import UsageError
from synapse_ng.evolution.executors import RayExecutor, create_executor
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.llm.registry import create_provider
from synapse_ng.models import LLMProviderConfig

SORTED_TALLY = (Path(__file__).parent / "test_cli_components.py").read_text().split('SORTED_TALLY = r"""')[1].split('"""')[0]


@pytest.fixture(scope="module")
def ray_executor():
    executor = RayExecutor(None, num_cpus=2)
    yield executor
    executor.close()


def test_a_search_evaluates_its_candidates_as_ray_tasks(tmp_path, ray_executor):
    server = LoopbackServer(OpenAIWire(), Ok(text=f"```rust\n{SORTED_TALLY}\n```"))
    store = Store(tmp_path / "ws")
    provider = create_provider(LLMProviderConfig("openai_api", "scripted", server.url + "/v1"))
    search = EvolutionSearch(
        get_component("raft_consensus"), provider, store, problem="the tally is slow",
        config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=4), budget=Budget(samples=1),
        executor=ray_executor,
    )  # fmt: skip
    try:
        result = asyncio.run(search.run())
    finally:
        server.close()
    assert result.improved, result.reason
    rows = [row for row in store.candidates(result.run_id) if row.operator != "baseline"]
    assert rows[0].status == "correct"
    assert ray_executor.nodes()  # a live Ray node served the tasks


def test_ray_evaluation_runs_in_a_ray_worker_and_matches_a_local_one(ray_executor):
    from synapse_ng.components import Split
    from synapse_ng.evolution import build_candidate, evaluate
    from synapse_ng.models import CodeLanguage

    component = get_component("raft_consensus")
    built = build_candidate(component, SORTED_TALLY)
    remote = asyncio.run(ray_executor.evaluate(component, SORTED_TALLY, CodeLanguage.RUST, Split.TRAIN, built=built, random_cases=3, time_limit_s=300))
    local = evaluate(component, SORTED_TALLY, CodeLanguage.RUST, Split.TRAIN, random_cases=3, built=built)
    assert remote.evaluated_by.startswith("ray node") and str(os.getpid()) not in remote.evaluated_by
    assert remote.correct and local.correct
    # Fuel is deterministic: the cluster measures exactly what this machine measures.
    assert [w["candidate"]["fuel"] for w in remote.workloads] == [w["candidate"]["fuel"] for w in local.workloads]


def test_executor_arguments_are_checked():
    with pytest.raises(UsageError, match="--ray-address goes with --executor ray"):
        create_executor("local", "auto")
    with pytest.raises(UsageError, match="unknown executor"):
        create_executor("dask")
