"""The network learns from what it deployed, on real node processes (the model is a scripted loopback
server; everything else is real): an evolved upgrade rolls out, its claim and its live effect are
recorded from the signed stage reports, and the next search of the component sees both in its prompt and
starts from the deployed block; once the upgrade is rolled back, neither its block nor a block that
behaves exactly like it is proposed again."""

from __future__ import annotations

import sqlite3

import pytest

from llm_servers import LoopbackServer, Ok, OpenAIWire
from node_helpers import (
    GAP_PENALTY,
    AllocationLoad,
    approved_upgrades,
    chronic_allocation_network,
    code_upgrades,
    get,
    post,
    rollout_state,
    wait_for,
)
from test_dashboard import rendered_row

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# The gap penalty with every score doubled: other source, the same decisions, so the same bins everywhere.
GAP_DOUBLED = GAP_PENALTY.replace(
    "{ -gap - PENALTY } else { -gap }", "{ 2.0 * (-gap - PENALTY) } else { -2.0 * gap }"
)
assert GAP_DOUBLED != GAP_PENALTY


def block(text: str) -> Ok:
    return Ok(text=f"A version:\n```rust\n{text}\n```")


def prompts_since(server: LoopbackServer, count: int) -> list[str]:
    return [
        "\n".join(m["content"] for m in request.body["messages"])
        for request in server.requests[count:]
        if isinstance(request.body, dict) and "messages" in request.body
    ]


def upgrades_after(url: str, first: dict) -> list[dict]:
    return [p for p in code_upgrades(url) if (p["created_at"], p["id"]) > (first["created_at"], first["id"])]


def actions_after(url: str, count: int) -> list[dict]:
    return get(url, "/api/health/issues")["actions"][count:]


def test_outcomes_reach_the_next_search_and_a_rolled_back_block_is_never_proposed_again(tmp_path):
    server = LoopbackServer(OpenAIWire(), block(GAP_PENALTY))
    # A target no upgrade meets, so the issue stays chronic and the engine runs again and again.
    net = chronic_allocation_network(
        tmp_path,
        server.url,
        deadline_s=30.0,
        health_window_s=2.0,
        proposal_cooldown_s=1.0,
        targets={"allocation_excess_pct": 0.5},
    )
    load = AllocationLoad(net).start()
    try:
        first = wait_for(lambda: approved_upgrades(net.url(0)), 300, "the first approved evolved upgrade")[0]
        author = net.ids.index(first["author"])
        lead = net.url(author)
        for url in net.urls:
            wait_for(lambda url=url: rollout_state(url, first["id"]) == "completed", 150, "rollout")
        # The claim and the live effect, from every node's signed stage report.
        history = get(lead, "/api/islands")["outcomes"]
        claimed = first["params"]["improvement_pct"]
        assert [o["proposal_id"] for o in history] == [first["id"]]
        outcome = history[0]
        assert outcome["claimed_pct"] == first["params"]["improvement_pct"]
        assert len(outcome["live"]) == 3 and outcome["live_effect_pct"] is not None
        shown = rendered_row(lead, f"[data-outcome='{first['id']}']", ("claimed", "live"), "6-outcomes.png")
        assert f"{claimed:.2f} %" in shown["claimed"] and "on 3 node(s)" in shown["live"]
        # The next search sees it in its prompt, and starts from the deployed block: the model's same
        # answer is that block, which is never proposed again.
        seen = len(server.requests)
        line = f"upgrade {first['id'][:8]} (completed): claimed {claimed:+.2f} % held out"
        wait_for(lambda: any(line in p for p in prompts_since(server, seen)), 180, "the history in a prompt")
        done = len(get(lead, "/api/health/issues")["actions"])
        wait_for(
            lambda: any(a["kind"] in ("evolve_failed", "code_upgrade") for a in actions_after(lead, done)),
            180,
            "the second search ends",
        )
        assert upgrades_after(lead, first) == []
        # Rolled back by the operator: the block is banned, and so is one that behaves exactly like it.
        response = post(
            lead, "/api/upgrades/task_allocation/rollback", {"reason": "operator test"}, operator=True
        )
        assert response.status_code == 201, response.text
        for url in net.urls:
            wait_for(lambda url=url: rollout_state(url, first["id"]) == "rolled_back", 60, "rolled back")
        server.steps = [block(GAP_DOUBLED)]
        seen = len(server.requests)
        wait_for(
            lambda: any("rolled back" in p for p in prompts_since(server, seen)),
            180,
            "the rollback in a prompt",
        )
        # The double is refused for behaving like the rolled-back block. Waited for, not read after the
        # next search's end: a search that started before the rollback can be the one that ends first.
        engine_path = net.dir(author) / "engine" / "engine.sqlite3"

        def statuses() -> set[str]:
            engine = sqlite3.connect(engine_path)
            try:
                return {row[0] for row in engine.execute("SELECT status FROM candidates")}
            finally:
                engine.close()

        wait_for(lambda: "banned" in statuses(), 180, "the double refused as the rolled-back block")
        done = len(get(lead, "/api/health/issues")["actions"])
        wait_for(
            lambda: any(a["kind"] in ("evolve_failed", "code_upgrade") for a in actions_after(lead, done)),
            180,
            "a search after the refusal ends",
        )
        # Neither the block nor its double is proposed again; the tuner may still find another program.
        for later in upgrades_after(lead, first):
            source = get(lead, f"/api/proposals/{later['id']}")["params"]["source"]
            assert GAP_PENALTY.strip() not in source and GAP_DOUBLED.strip() not in source
    finally:
        load.stop()
        net.stop()
        server.close()
