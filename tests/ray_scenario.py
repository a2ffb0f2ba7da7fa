"""Run by test_executor_ray.py in a process of its own: a Ray driver installs fatal-signal handlers that
pre-empt wasmtime's trap handling for the rest of its process, so no sandbox may run beside it (the
search never runs one in its own process: evaluations happen in spawned workers)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from llm_servers import LoopbackServer, Ok, OpenAIWire  # noqa: E402
from synapse_ng.components import Split, get_component  # noqa: E402
from synapse_ng.evolution import build_candidate  # noqa: E402
from synapse_ng.evolution.executors import RayExecutor  # noqa: E402
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig  # noqa: E402
from synapse_ng.evolution.store import Store  # noqa: E402
from synapse_ng.llm.registry import create_provider  # noqa: E402
from synapse_ng.models import CodeLanguage, LLMProviderConfig  # noqa: E402

SORTED_TALLY = (
    (Path(__file__).parent / "test_cli_components.py")
    .read_text()
    .split('SORTED_TALLY = r"""')[1]
    .split('"""')[0]
)


def main(workspace: str) -> None:
    component = get_component("raft_consensus")
    executor = RayExecutor(None, num_cpus=2)
    try:
        # A whole search whose evaluations are Ray tasks.
        server = LoopbackServer(OpenAIWire(), Ok(text=f"```rust\n{SORTED_TALLY}\n```"))
        store = Store(Path(workspace))
        provider = create_provider(LLMProviderConfig("openai_api", "scripted", server.url + "/v1"))
        search = EvolutionSearch(
            component,
            provider,
            store,
            problem="the tally is slow",
            config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=4),
            budget=Budget(samples=1),
            executor=executor,
        )
        try:
            result = asyncio.run(search.run())
        finally:
            server.close()
        rows = [row for row in store.candidates(result.run_id) if row.operator != "baseline"]
        print(f"search improved={result.improved} status={rows[0].status} nodes={len(executor.nodes())}")
        # One evaluation through Ray, to compare with the same evaluation run locally by the test.
        built = build_candidate(component, SORTED_TALLY)
        remote = asyncio.run(
            executor.evaluate(
                component,
                SORTED_TALLY,
                CodeLanguage.RUST,
                Split.TRAIN,
                built=built,
                random_cases=3,
                time_limit_s=300,
            )
        )
        print(f"evaluated_by={remote.evaluated_by} driver_pid={os.getpid()} correct={remote.correct}")
        print("fuel=" + ",".join(str(w["candidate"]["fuel"]) for w in remote.workloads))
    finally:
        executor.close()


if __name__ == "__main__":
    main(sys.argv[1])
