"""The rules of a collaborative evolution every node applies the same way: the bodies of its messages (a
member's hostile body is refused with the field named) and what the islands derive from them."""

from __future__ import annotations

import hashlib
import itertools
import math

import pytest

from synapse_ng.collaboration.agreement import Final, choose_winner, island_members
from synapse_ng.collaboration.messages import (
    MAX_ISLANDS,
    MAX_LINEAGE,
    MAX_MIGRANT_SOURCE_CHARS,
    MAX_MIGRANTS_PER_ISLAND,
    CollaborationError,
    evolution_body,
    migrant_body,
    validate_evolution_body,
    validate_migrant_body,
)

NODES = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(6)]
HASH = "ab" * 32
BLOCK = "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { bins.to_vec() }"


def good_migrant(**changes) -> dict:
    body = migrant_body(NODES[0], BLOCK, HASH, [HASH], 210.5, {"train_or bins": 210.5}, False)
    body.update(changes)
    return body


def test_well_formed_bodies_pass():
    validate_evolution_body(evolution_body("task_allocation:x", "task_allocation", "rust", NODES[:3], 1e9, 7))
    validate_migrant_body(good_migrant())


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"source": "x" * (MAX_MIGRANT_SOURCE_CHARS + 1)}, "source has"),
        ({"source": "   "}, "source must be"),
        ({"source_hash": "AB" * 32}, "source_hash"),
        ({"lineage": [HASH] * (MAX_LINEAGE + 1)}, "lineage"),
        ({"lineage": ["nope"]}, "lineage[]"),
        ({"score": math.nan}, "score"),
        ({"score": True}, "score"),
        ({"scores": {f"w{i}": 1.0 for i in range(65)}}, "scores must be"),
        ({"scores": {"w": "fast"}}, "scores['w']"),
        ({"final": 1}, "final"),
        ({"evolution": "0" * 63}, "evolution"),
        ({"extra": 1}, "expected exactly"),
    ],
)
def test_a_hostile_migrant_is_refused_naming_the_field(changes, named):
    with pytest.raises(CollaborationError) as refused:
        validate_migrant_body(good_migrant(**changes))
    assert named in str(refused.value)
    assert len(str(refused.value)) < 400  # a huge value is never echoed whole


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"islands": []}, "islands"),
        ({"islands": NODES[:1] * 2}, "twice"),
        ({"islands": [NODES[0]] + ["z" * 64] * 1}, "islands[]"),
        ({"language": "python"}, "language"),
        ({"ends_at": math.inf}, "ends_at"),
        ({"seed": -1}, "seed"),
        ({"issue": "a\u202eb"}, "issue"),
    ],
)
def test_a_hostile_evolution_is_refused_naming_the_field(changes, named):
    body = evolution_body("task_allocation:x", "task_allocation", "rust", NODES[:3], 1e9, 7)
    body.update(changes)
    with pytest.raises(CollaborationError) as refused:
        validate_evolution_body(body)
    assert named in str(refused.value)


def test_too_many_islands_are_refused():
    ids = [hashlib.sha256(f"n{i}".encode()).hexdigest() for i in range(MAX_ISLANDS + 1)]
    with pytest.raises(CollaborationError, match="islands"):
        evolution_body("k", "task_allocation", "rust", ids, 1e9, 0)


def test_every_node_ranks_the_same_islands_whatever_order_it_lists_members_in():
    ranked = island_members("task_allocation:allocation_excess_pct", NODES, 3)
    assert len(ranked) == 3 and len(set(ranked)) == 3
    for order in itertools.islice(itertools.permutations(NODES), 50):
        assert island_members("task_allocation:allocation_excess_pct", order, 3) == ranked
    # Another issue ranks the members anew: not always the same node first.
    firsts = {island_members(f"issue-{i}", NODES, 1)[0] for i in range(40)}
    assert len(firsts) > 2


def test_the_winner_is_the_best_reproduced_final_in_any_order():
    liar = Final("l", "00" * 32, claimed=100.0, measured=250.0, shown=True)  # claimed far better than it is
    unshown = Final("u", "01" * 32, claimed=150.0, measured=150.0, shown=False)  # no significant gain
    wrong = Final("w", "02" * 32, claimed=120.0, measured=None)  # incorrect where measured
    honest = [Final("a", "0b" * 32, 200.0, 200.0, True), Final("b", "0a" * 32, 200.0, 200.0, True)]
    finals = [liar, unshown, wrong, *honest, Final("c", "0c" * 32, 205.0, 205.0, True)]
    winners = {choose_winner(order, "min") for order in itertools.permutations(finals)}
    assert winners == {honest[1]}, "the tie at 200 goes to the smaller source hash"
    assert choose_winner(finals, "max").author == "c"
    assert choose_winner([liar, unshown, wrong], "min") is None


# ------------------------------------------------------------------------------------------ outcomes


def _signed(identity, kind, body):
    from synapse_ng.node.envelope import sign_envelope

    return sign_envelope(identity, kind, body)


def test_the_outcome_history_puts_each_claim_beside_its_live_effect(tmp_path):
    from synapse_ng.collaboration.outcomes import describe, trust_penalties, upgrade_outcomes
    from synapse_ng.node.identity import Identity
    from synapse_ng.upgrade import RolloutStatus, rollback_body, stage_report_body

    keys = [Identity.load_or_create(tmp_path / f"k{i}") for i in range(3)]
    ids = [k.node_id for k in keys]

    def upgrade(author, claimed, contributors=None):
        params = {"component": "task_allocation", "improvement_pct": claimed, "source": "x"}
        if contributors:
            params["contributors"] = contributors
        return _signed(author, "proposal", {"params": params})

    kept = upgrade(keys[0], 1.7)
    overfit = upgrade(keys[0], 2.0, contributors=[ids[2], ids[0]])  # island 2's program, proposed by 0
    statuses = {
        kept.id: RolloutStatus(kept.id, "completed", [], None),
        overfit.id: RolloutStatus(overfit.id, "rolled_back", [], None, rollback_reason="worse by 6 %"),
    }
    reports = {
        kept.id: [
            _signed(
                keys[i],
                "stage_report",
                stage_report_body(kept.id, 0, True, {"objective_before": 4.0, "objective_after": after}),
            )
            for i, after in enumerate((3.8, 3.9))
        ],
        overfit.id: [
            _signed(
                keys[1],
                "stage_report",
                stage_report_body(overfit.id, 0, False, {"objective_before": 4.0, "objective_after": 4.24}),
            )
        ],
    }
    rollbacks = {overfit.id: [_signed(keys[1], "rollback", rollback_body(overfit.id, "worse by 6 %", True))]}
    outcomes = upgrade_outcomes([kept, overfit], reports, rollbacks, statuses)
    first, second = outcomes
    assert first.live_effect_pct == pytest.approx((5.0 + 2.5) / 2) and not first.contradicted
    assert second.live_effect_pct == pytest.approx(-6.0) and second.contradicted
    assert trust_penalties(outcomes) == {ids[0]: 1}, "the proposer signed the claim"
    line = describe(second)
    assert "claimed +2.00 % held out, live -6.00 % on 1 nodes; rolled back automatically" in line
    assert "worse by 6" not in line, "a member's free text stays out of the prompt"
    # A member that floods reports with absurd figures counts once, and the median does not follow it.
    absurd = {"objective_before": 1e-300, "objective_after": 1e300}
    reports[kept.id] += [
        _signed(keys[2], "stage_report", stage_report_body(kept.id, 0, True, absurd)) for _ in range(16)
    ]
    flooded = upgrade_outcomes([kept], reports, rollbacks, statuses)[0]
    assert len(flooded.live) == 3 and flooded.live_effect_pct == pytest.approx(2.5)
    assert not flooded.contradicted
    # An operator's rollback of an upgrade that did well live contradicts nothing.
    statuses[kept.id] = RolloutStatus(kept.id, "rolled_back", [], None, rollback_reason="operator")
    rollbacks[kept.id] = [_signed(keys[0], "rollback", rollback_body(kept.id, "operator", False))]
    assert not upgrade_outcomes([kept], reports, rollbacks, statuses)[0].contradicted


# ------------------------------------------------------------------------------------------ admission


@pytest.fixture
def admission(tmp_path):
    """A node's admission over real SQLite, with six members (their keys in hand, as attackers have)."""
    from synapse_ng.node.admission import Admission
    from synapse_ng.node.config import NodeConfig
    from synapse_ng.node.identity import Identity
    from synapse_ng.node.ledger import Ledger
    from synapse_ng.node.metrics import NodeMetrics
    from synapse_ng.node.state import NodeState

    keys = [Identity.load_or_create(tmp_path / f"key{i}") for i in range(6)]
    state = NodeState(tmp_path / "node.sqlite3")
    for key in keys:
        state.add_member(key.node_id, None)
    config = NodeConfig(data_dir=str(tmp_path))
    ledger = Ledger(state, config)
    gate = Admission(keys[0], state, config, NodeMetrics(), ledger, on_new=lambda envelope: None)
    yield gate, keys
    state.close()


def _refusal(gate, envelope) -> tuple[int, str]:
    from synapse_ng.node.refusal import Refusal

    with pytest.raises(Refusal) as refused:
        gate.ingest(envelope)
    return refused.value.status, refused.value.message


ISSUE = "task_allocation:allocation_excess_pct"


class Scene:
    """Six members; the issue's three islands by rank, the designated one first; one member that is none;
    an evolution the designated one signed (not yet handed to the node)."""

    def __init__(self, gate, keys):
        import time

        from synapse_ng.node.envelope import sign_envelope

        self.gate = gate
        self.by_id = {k.node_id: k for k in keys}
        self.ranked = island_members(ISSUE, self.by_id, 3)
        self.lead, self.second = self.by_id[self.ranked[0]], self.by_id[self.ranked[1]]
        self.outsider = next(k for k in keys if k.node_id not in self.ranked)
        self.body = evolution_body(ISSUE, "task_allocation", "rust", self.ranked, time.time() + 600, 1)
        self.evolution = sign_envelope(self.lead, "evolution", self.body)

    def upgrade(self, key, contributors):
        """A code upgrade that names the evolution, signed by `key`."""
        import time

        from synapse_ng.governance import proposal_body
        from synapse_ng.node.envelope import sign_envelope

        params = {
            "component": "task_allocation",
            "wasm_sha256": HASH,
            "wasm_size": 100,
            "language": "rust",
            "source": BLOCK,
            "evidence": {},
            "improvement_pct": 1.0,
            "issue": ISSUE,
            "evolution": self.evolution.id,
            "contributors": contributors,
        }
        rules = self.gate.ledger.rules
        return sign_envelope(
            key,
            "proposal",
            proposal_body("code_upgrade", "evolved", "", params, rules=rules, now=time.time()),
        )


@pytest.fixture
def scene(admission):
    return Scene(*admission)


def test_an_evolution_binds_only_the_islands_its_issue_ranks_and_only_from_the_designated_member(scene):
    import time

    from synapse_ng.node.envelope import sign_envelope

    gate, body = scene.gate, scene.body
    # Opened by another island in the designated one's name, or naming islands of its own choice.
    assert _refusal(gate, sign_envelope(scene.second, "evolution", body))[0] == 403
    chosen = [scene.ranked[0]] + [n for n in scene.by_id if n not in scene.ranked][:2]
    status, message = _refusal(gate, sign_envelope(scene.lead, "evolution", {**body, "islands": chosen}))
    assert status == 422 and "sha256(issue + member)" in message
    # Longer than four hours, or about another component's issue: refused.
    long = {**body, "ends_at": time.time() + 5 * 3600}
    assert _refusal(gate, sign_envelope(scene.lead, "evolution", long))[0] == 422
    odd = {**body, "issue": "anything at all"}
    assert _refusal(gate, sign_envelope(scene.lead, "evolution", odd))[0] == 422
    assert gate.ingest(scene.evolution).new
    # One open evolution per member.
    again = {**body, "ends_at": body["ends_at"] + 1}
    assert _refusal(gate, sign_envelope(scene.lead, "evolution", again))[0] == 429


def test_a_migrant_comes_only_from_an_island_in_time_within_its_count_and_with_its_own_hash(scene):
    import time

    from synapse_ng.languages import source_hash
    from synapse_ng.node.envelope import sign_envelope

    gate, evolution = scene.gate, scene.evolution
    digest = source_hash(BLOCK, "rust")

    def migrant(key, final=False, **changes):
        body = migrant_body(evolution.id, BLOCK, digest, [], 200.0, {}, final)
        body.update(changes)
        return sign_envelope(key, "migrant", body)

    assert _refusal(gate, migrant(scene.second))[0] == 404, "an evolution this node does not hold (yet)"
    gate.ingest(evolution)
    assert _refusal(gate, migrant(scene.outsider))[0] == 403
    assert _refusal(gate, migrant(scene.second, source_hash=HASH))[0] == 422
    # An evolution that ended 15 minutes ago (history: stored, binding no one) takes no more migrants.
    ended = sign_envelope(
        scene.lead,
        "evolution",
        evolution_body(ISSUE, "task_allocation", "rust", scene.ranked, time.time() - 900, 1),
        created_at=time.time() - 1000,
    )
    assert gate.ingest(ended).new
    stale = sign_envelope(scene.second, "migrant", migrant_body(ended.id, BLOCK, digest, [], 200.0, {}, True))
    status, message = _refusal(gate, stale)
    assert status == 409 and "over" in message
    for n in range(MAX_MIGRANTS_PER_ISLAND - 1):
        assert gate.ingest(migrant(scene.second, score=float(n))).new
    assert gate.ingest(migrant(scene.second, final=True)).new
    assert _refusal(gate, migrant(scene.second, score=-1.0))[0] == 429


def test_a_stranger_cannot_stop_the_islands_by_proposing_in_their_evolutions_name(scene):
    gate = scene.gate
    gate.ingest(scene.evolution)
    assert _refusal(gate, scene.upgrade(scene.outsider, [scene.outsider.node_id]))[0] == 403
    status, message = _refusal(gate, scene.upgrade(scene.second, [scene.outsider.node_id]))
    assert status == 422 and "not an island" in message
    assert gate.ingest(scene.upgrade(scene.second, [scene.ranked[1], scene.ranked[0]])).new


def test_the_next_island_takes_over_only_when_no_island_proposed_in_time(scene):
    import asyncio
    import time

    from synapse_ng.languages import source_hash
    from synapse_ng.node.envelope import sign_envelope
    from synapse_ng.node.islands import IslandExchange, Islands

    gate, evolution, ranked = scene.gate, scene.evolution, scene.ranked
    gate.config.island_takeover_s = 1.0
    room = Islands(scene.second.node_id, gate.config, gate.state, gate.ledger, gate.sign, None, None, None)
    gate.ingest(evolution)
    digest = source_hash(BLOCK, "rust")
    final = migrant_body(evolution.id, BLOCK, digest, [], 1.0, {}, True)
    gate.ingest(sign_envelope(scene.lead, "migrant", final))

    def exchange():
        door = IslandExchange(room, evolution, 1, {"liars": set(), "proposes": False})
        door.finalists = {ranked[0]}  # the designated island sent its final: it is alive at the end
        return door

    winner = Final(ranked[0], digest, 1.0, 1.0, True)
    started = time.monotonic()
    assert asyncio.run(exchange().should_propose(winner)), "no proposal came: the second island takes over"
    assert time.monotonic() - started >= 1.0, "after waiting its turn"
    # Once an island proposed, the next one does not, and says so at once.
    gate.ingest(scene.upgrade(scene.lead, [ranked[0]]))
    started = time.monotonic()
    assert not asyncio.run(exchange().should_propose(winner))
    assert time.monotonic() - started < 0.5
