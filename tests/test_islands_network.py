"""Collaborative evolution on a real network: node processes on loopback, each island with its own scripted
model (a loopback server speaking the OpenAI wire protocol); compilation, the sandbox, measurement,
signatures and gossip are real. Three islands evolve one chronic issue together; a member that lies about
its program's figures is refused by every island; a designated node killed mid-search does not stop the
proposal; every island derives the same winner."""

from __future__ import annotations

import pytest

from llm_servers import HANG, LoopbackServer, Ok, OpenAIWire
from node_helpers import (
    GAP_PENALTY,
    AllocationLoad,
    code_upgrades,
    get,
    identity_of,
    start_network,
    submit,
    wait_for,
)
from synapse_ng.collaboration.agreement import island_members
from synapse_ng.collaboration.messages import migrant_body
from synapse_ng.languages import source_hash
from test_dashboard import rendered_row

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ISSUE = "task_allocation:allocation_excess_pct"
# Correct, and worse than best fit: an island whose model only finds this has nothing to win with.
WORST_FIT = "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { bins.iter().map(|&r| r - item).collect() }"
GAP = source_hash(GAP_PENALTY, "rust")


def block(text: str) -> Ok:
    return Ok(text=f"A version:\n```rust\n{text}\n```")


def island_network(tmp_path, models: dict[int, str | None], nodes: int = 3, **settings):
    """`models`: island rank -> its model's URL (None: the engine off on that node). Returns the network
    and the node index of each rank."""
    ranks: list[int] = []

    def per_rank(net):
        ranked = island_members(ISSUE, net.ids, nodes)
        ranks.extend(net.ids.index(node) for node in ranked)
        return {
            ranks[rank]: (
                {"evolve": False}
                if url is None
                else {
                    "evolve": True,
                    "llm_provider": "openai_api",
                    "llm_model": "scripted",
                    "llm_endpoint": url + "/v1",
                }
            )
            for rank, url in models.items()
        }

    net = start_network(
        tmp_path,
        nodes,
        per_node=per_rank,
        islands=3,
        evolve_samples=1,
        targets={"allocation_excess_pct": 3.0},
        chronic_after=3,
        immune_interval_s=1.0,
        island_final_wait_s=5.0,
        island_takeover_s=60.0,
        max_clock_skew_s=5.0,  # one machine, one clock: the islands wait this long for a late final
        migration_interval_s=0.0,
        deadline_s=20.0,
        **settings,
    )
    return net, ranks


def evolution_of(url: str) -> dict:
    runs = get(url, "/api/islands")["runs"]
    return runs[-1] if runs else None


def test_three_islands_evolve_together_and_refuse_a_member_who_lies_about_its_figures(tmp_path):
    servers = [
        LoopbackServer(OpenAIWire(), block(WORST_FIT)),  # the designated island finds nothing itself
        LoopbackServer(OpenAIWire(), block(GAP_PENALTY)),  # the second island finds the improvement
    ]
    # The third island is a dishonest member: its engine is off, and its key signs a forged final.
    net, ranks = island_network(tmp_path, {0: servers[0].url, 1: servers[1].url, 2: None})
    load = AllocationLoad(net).start()
    try:
        lead, second, liar = (net.url(ranks[r]) for r in range(3))
        run = wait_for(lambda: evolution_of(lead), 120, "the designated node opens an evolution")
        evolution = run["evolution"]
        assert run["rank"] == 0 and run["islands"] == [net.ids[i] for i in ranks]
        wait_for(lambda: evolution_of(second), 60, "the second island joins")
        # The liar claims its copy of the improvement packs 40 bins fewer than it does.
        forged = migrant_body(evolution, GAP_PENALTY, GAP, [], 150.0, {}, True)
        assert (
            submit(lead, identity_of(net, ranks[2]), "migrant", forged).status_code == 201
        )  # gossip spreads it
        proposal = wait_for(lambda: code_upgrades(lead), 240, "one proposal from the islands")[0]
        params = proposal["params"]
        assert proposal["author"] == net.ids[ranks[0]]
        assert params["evolution"] == evolution
        # Found by the second island, proposed by the first, the liar not credited.
        full = get(lead, f"/api/proposals/{proposal['id']}")["params"]
        assert GAP_PENALTY.strip() in full["source"]  # the block, in the component's skeleton
        assert params["contributors"] == [net.ids[ranks[1]], net.ids[ranks[0]]]  # the winner's first
        views = {url: evolution_of(url) for url in (lead, second)}
        for url, view in views.items():
            assert view["winner"]["author"] == net.ids[ranks[1]], url
            assert view["winner"]["source_hash"] == GAP, url
            assert view["liars"] == [net.ids[ranks[2]]], url
            assert get(url, "/api/islands")["misreports"] == {net.ids[ranks[2]]: 1}, url
            assert view["contributors"] == [net.ids[ranks[0]], net.ids[ranks[1]]], url
        assert views[second]["final_sent"] and views[lead]["final_sent"]
        assert views[lead]["proposes"]
        # The second island saw the lead's proposal and did not take over: its run ends without proposing.
        done = wait_for(lambda: evolution_of(second)["state"] == "done" and evolution_of(second), 90, "done")
        assert not done["proposes"] and len(code_upgrades(lead)) == 1
        # A liar cannot send a second final, nor migrants for an evolution it is not an island of.
        again = migrant_body(evolution, WORST_FIT, source_hash(WORST_FIT, "rust"), [], 1.0, {}, True)
        refused = submit(lead, identity_of(net, ranks[2]), "migrant", again)
        assert refused.status_code == 409 and "already sent its final" in refused.json()["error"]
        # The operator's page shows the island, its migrants and the liar (a real browser).
        row = rendered_row(
            lead, f"[data-island='{evolution}']", ("admitted", "liars", "winner"), "5-islands.png"
        )
        assert net.ids[ranks[2]][:12] in row["liars"] and net.ids[ranks[1]][:12] in row["winner"]
    finally:
        load.stop()
        net.stop()
        for server in servers:
            server.close()


def test_a_designated_node_killed_mid_search_does_not_stop_the_proposal(tmp_path):
    # The designated island's model never answers, so it is surely mid-search when it is killed.
    servers = [LoopbackServer(OpenAIWire(), HANG)] + [
        LoopbackServer(OpenAIWire(), block(GAP_PENALTY)) for _ in range(2)
    ]
    net, ranks = island_network(
        tmp_path, {rank: servers[rank].url for rank in range(3)}, evolve_minutes=0.5, quorum=0.5
    )
    load = AllocationLoad(net).start()
    try:
        lead = net.url(ranks[0])
        run = wait_for(lambda: evolution_of(lead), 120, "the designated node opens an evolution")
        wait_for(lambda: all(evolution_of(net.url(ranks[r])) for r in (1, 2)), 60, "the islands join")
        net.kill(ranks[0])
        second = net.url(ranks[1])
        proposal = wait_for(lambda: code_upgrades(second), 300, "a proposal without the designated node")[0]
        assert proposal["author"] == net.ids[ranks[1]], "the next island by rank took over"
        assert proposal["params"]["evolution"] == run["evolution"]
        assert net.ids[ranks[0]] not in proposal["params"]["contributors"]
        winners = [evolution_of(net.url(ranks[r]))["winner"] for r in (1, 2)]
        assert winners[0] == winners[1] and winners[0]["source_hash"] == GAP
        third = net.url(ranks[2])
        wait_for(lambda: evolution_of(third)["state"] == "done", 120, "the third island ends")
        assert not evolution_of(third)["proposes"] and len(code_upgrades(third)) == 1
    finally:
        load.stop()
        net.stop()
        for server in servers:
            server.close()
