"""A short, real search with the embedded model: its answers are compiled, checked and measured end to end.

Nothing here is scripted: the local provider runs Qwen2.5-Coder-1.5B through llama.cpp. What a 1.5B model
writes is not predictable, so the test asserts what the pipeline must do with any answer, not that the
answer is good: every sample is generated, recorded with its tokens, and either compiled and measured or
refused with its reason.
"""

from __future__ import annotations

import asyncio

from synapse_ng.components import get_component
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.llm.registry import create_provider
from synapse_ng.models import LLMProviderConfig

OUTCOMES = {"correct", "incorrect", "compile_failed", "rejected", "duplicate", "no_code", "time_limit"}


def test_a_real_search_with_the_embedded_model_compiles_and_measures_its_candidates(tmp_path):
    component = get_component("task_allocation")
    provider = create_provider(LLMProviderConfig("local", timeout_seconds=300))
    store = Store(tmp_path / "ws")
    search = EvolutionSearch(
        component, provider, store, problem="Use fewer bins than best fit.",
        config=SearchConfig(islands=1, concurrency=1, tune_share=0.0, random_cases=4, max_new_tokens=320, seed=3),
        budget=Budget(samples=2),
    )  # fmt: skip
    result = asyncio.run(search.run())
    rows = store.candidates(result.run_id)
    assert rows[0].operator == "baseline" and rows[0].status == "correct"
    samples = rows[1:]
    assert len(samples) == 2
    for row in samples:
        assert row.provider == "local" and row.tokens_in > 0 and row.tokens_out > 0
        assert row.status in OUTCOMES, row.status
        if row.status in ("correct", "incorrect"):
            assert row.wasm_sha256 and row.verification is not None  # compiled, then judged by the cases
        if row.status == "correct":
            assert row.score is not None and row.metrics["workloads"]  # measured on the training workloads
    assert store.get_run(result.run_id).status in ("improved", "no_improvement")
    assert result.reason
