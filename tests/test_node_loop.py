"""The closed loop on a real network: load on the nodes' task_allocation -> the immune system sees a chronic
excess over the bound -> the designated node runs the Evolutionary Engine -> a code_upgrade proposal with
measured evidence -> every node re-verifies and votes -> staged rollout -> the upgrade live everywhere.

The model is the only stand-in: a loopback server speaking the OpenAI wire protocol answers with a block
(the hand-written gap-penalty heuristic). Everything else is real: node processes, HTTP, signatures,
compilation, the sandbox, measurement on training and held-out workloads, evidence re-runs."""

from __future__ import annotations

import itertools

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llm_servers import LoopbackServer, Ok, OpenAIWire
from node_helpers import (
    GAP_PENALTY,
    AllocationLoad,
    approved_upgrades,
    chronic_allocation_network,
    code_upgrades,
    get,
    identity_of,
    rollout_state,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def test_chronic_allocation_excess_is_evolved_voted_and_rolled_out_everywhere(tmp_path):
    server = LoopbackServer(OpenAIWire(), Ok(text=f"A gap-aware version:\n```rust\n{GAP_PENALTY}\n```"))
    net = chronic_allocation_network(tmp_path, server.url, deadline_s=30.0, health_window_s=2.0)
    load = AllocationLoad(net).start()
    try:
        proposals = wait_for(
            lambda: approved_upgrades(net.url(0)), 300, "an approved code_upgrade from the immune system"
        )
        proposal = proposals[0]
        assert proposal["params"]["issue"] == "task_allocation:allocation_excess_pct"
        assert proposal["params"]["improvement_pct"] > 0
        author = {identity_of(net, i).node_id: i for i in range(3)}[proposal["author"]]
        for url in net.urls:
            wait_for(
                lambda url=url: rollout_state(url, proposal["id"]) == "completed",
                150,
                f"rollout completed at {url}",
            )
            assert get(url, "/api/components")["components"]["task_allocation"]["active"] == proposal["id"]
        view = get(net.url(1), f"/api/proposals/{proposal['id']}")
        assert view["outcome"]["status"] == "approved" and view["outcome"]["yes"] == 3
        assert all("evidence reproduced" in v["reason"] for v in view["votes"])
        # The immune system escalated only after three consecutive checks, and only one node evolved.
        issues = get(net.url(author), "/api/health/issues")["issues"]
        assert any(
            i["issue_source"] == "algorithm" and i["affected_component"] == "task_allocation" for i in issues
        )
        assert len(server.requests) >= 1
        stats = get(net.url(author), "/api/evolutionary-engine/stats")
        for field in (
            "total_generations",
            "successful_compilations",
            "failed_compilations",
            "success_rate",
            "workspace_dir",
            "llm_provider",
            "llm_model",
            "avg_generation_time_seconds",
            "avg_compilation_time_seconds",
        ):
            assert field in stats, field
        assert stats["total_generations"] >= 1 and stats["llm_provider"] == "openai_api"
        # Never a second proposal for the same issue while the first is open or rolling out: one that came
        # before the approved one closed without a quorum (its voters outlasted the deadline) first.
        proposed = code_upgrades(net.url(0))
        assert proposed[-1]["id"] == proposal["id"]
        for earlier, later in itertools.pairwise(proposed):
            assert earlier["outcome"]["status"] == "no quorum", earlier["outcome"]
            assert later["created_at"] > earlier["deadline"]
        metrics = __import__("httpx").get(net.url(author) + "/metrics", timeout=30).text
        assert f"synapse_evolutions_total {len(proposed)}.0" in metrics
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
        }
        stats = __import__("httpx").get(net.url(author) + "/api/evolutionary-engine/stats", timeout=30).json()
        assert samples[("synapse_engine_generations_total", ())] == stats["total_generations"]
        assert samples[("synapse_engine_enabled", ())] == 1
        succeeded = (("result", "succeeded"),)
        assert samples[("synapse_engine_compilations_total", succeeded)] == stats["successful_compilations"]
        assert f'synapse_proposals_total{{type="code_upgrade"}} {len(proposed)}.0' in metrics
    finally:
        load.stop()
        net.stop()
        server.close()
