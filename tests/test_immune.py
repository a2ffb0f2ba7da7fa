"""The immune system's detection, escalation and remedy rules, driven through a recording Remedies
(the node's side of the seam, scripted here: it is an internal interface)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from synapse_ng.immune import (
    DEFAULT_TARGETS,
    Action,
    ImmuneSystem,
    Remedies,
    Target,
    TargetError,
    severity,
    targets_from_config,
)
from synapse_ng.models import CodeLanguage, GeneratedCode, HealthIssue

GOSSIP = "gossip_protocol:dissemination_ms"
PEERS = "gossip_protocol:peers_reachable"
ALLOC = "task_allocation:allocation_excess_pct"


def good_code(component: str = "gossip_protocol") -> GeneratedCode:
    return GeneratedCode(
        language=CodeLanguage.RUST,
        source_code="fn f() {}",
        description="faster",
        target_component=component,
        estimated_improvement=12.5,
        wasm_binary=b"\0asm\1\0\0\0",
        wasm_hash="ab" * 32,
        evidence={"format": 1},
        measured=True,
    )


class Recorder:
    """Opens proposals into a dict (key -> id) and evolves by script."""

    def __init__(self, evolve_result=None) -> None:
        self.open: dict[str, str] = {}
        self.calls: list[tuple] = []
        self.evolve_result = evolve_result  # GeneratedCode, None, or an exception to raise
        self.hold: asyncio.Event | None = None  # when given, evolve waits for it ...
        self.hold_component = "gossip_protocol"  # ... but only for this component
        self.evolving = asyncio.Event()
        self.engine_enabled = True

    def open_proposal_for(self, issue_key: str) -> str | None:
        return self.open.get(issue_key)

    def propose_config(self, issue: HealthIssue, changes: dict, issue_key: str) -> str | None:
        pid = f"cfg{len(self.calls)}"
        self.calls.append(("config", issue_key, dict(changes)))
        self.open[issue_key] = pid
        return pid

    async def evolve(self, issue: HealthIssue) -> GeneratedCode | None:
        self.calls.append(("evolve", issue.affected_component))
        self.evolving.set()
        if self.hold is not None and issue.affected_component == self.hold_component:
            await asyncio.wait_for(self.hold.wait(), timeout=10)
        if isinstance(self.evolve_result, Exception):
            raise self.evolve_result
        return self.evolve_result

    def propose_code(self, issue: HealthIssue, code: GeneratedCode, issue_key: str) -> str | None:
        pid = f"code{len(self.calls)}"
        self.calls.append(("code", issue_key, code.target_component))
        self.open[issue_key] = pid
        return pid

    def close_all(self) -> None:
        self.open.clear()

    def kinds(self, name: str) -> list[tuple]:
        return [call for call in self.calls if call[0] == name]


def kinds(actions: list[Action]) -> list[str]:
    return [action.kind for action in actions]


# ------------------------------------------------------------------------------------------- targets


def test_default_targets_are_the_five_of_the_spec():
    by_metric = {t.metric: t for t in DEFAULT_TARGETS}
    assert list(by_metric) == [
        "allocation_excess_pct",
        "tally_fuel_per_vote",
        "dissemination_ms",
        "peers_reachable",
        "component_faults",
    ]
    assert (by_metric["allocation_excess_pct"].limit, by_metric["allocation_excess_pct"].bound) == (
        3.0,
        "max",
    )
    assert by_metric["tally_fuel_per_vote"].component == "raft_consensus"
    assert by_metric["tally_fuel_per_vote"].issue_type == "consensus"
    assert by_metric["dissemination_ms"].config_remedy == {"gossip_fanout": 4}
    assert by_metric["peers_reachable"].bound == "min"
    assert by_metric["peers_reachable"].config_remedy == {"anti_entropy_interval_s": 1.0}
    assert by_metric["component_faults"].component == ""
    assert by_metric["component_faults"].config_remedy is None
    assert by_metric["component_faults"].issue_type == "resource_usage"


def test_target_validation():
    base = {
        "metric": "m",
        "limit": 1.0,
        "bound": "max",
        "component": "c",
        "issue_type": "performance",
        "recommended_action": "a",
        "description": "d",
    }
    Target(**base)
    with pytest.raises(TargetError, match="bound"):
        Target(**{**base, "bound": "upper"})
    with pytest.raises(TargetError, match="finite"):
        Target(**{**base, "limit": float("nan")})
    with pytest.raises(TargetError, match="issue_type"):
        Target(**{**base, "issue_type": "weather"})
    with pytest.raises(TargetError, match="metric"):
        Target(**{**base, "metric": ""})
    with pytest.raises(TargetError, match="config_remedy"):
        Target(**{**base, "config_remedy": {}})
    with pytest.raises(TargetError, match="reported only"):
        Target(**{**base, "component": "", "config_remedy": {"k": 1}})
    assert isinstance(TargetError("x"), ValueError)
    remedy = {"gossip_fanout": 4}
    target = Target(**{**base, "config_remedy": remedy})
    remedy["gossip_fanout"] = 99
    assert target.config_remedy == {"gossip_fanout": 4}
    hash(target)


def test_targets_from_config_overrides_limits():
    targets = targets_from_config({"dissemination_ms": 500, "peers_reachable": 0.8})
    by_metric = {t.metric: t for t in targets}
    assert by_metric["dissemination_ms"].limit == 500.0
    assert by_metric["dissemination_ms"].config_remedy == {"gossip_fanout": 4}
    assert by_metric["peers_reachable"].limit == 0.8
    assert by_metric["allocation_excess_pct"].limit == 3.0
    assert targets_from_config({}) == DEFAULT_TARGETS


def test_targets_from_config_unknown_metric_names_the_known_ones():
    with pytest.raises(ValueError) as info:
        targets_from_config({"latency": 10})
    message = str(info.value)
    assert "latency" in message
    for target in DEFAULT_TARGETS:
        assert target.metric in message
    with pytest.raises(ValueError, match="number"):
        targets_from_config({"dissemination_ms": "fast"})


def test_severity_levels_at_the_edges():
    target = {t.metric: t for t in DEFAULT_TARGETS}["dissemination_ms"]  # limit 2000
    assert severity(2000.0, target) == "low"
    assert severity(2199.0, target) == "low"
    assert severity(2200.0, target) == "medium"  # r = 0.10
    assert severity(2499.0, target) == "medium"
    assert severity(2500.0, target) == "high"  # r = 0.25
    assert severity(2999.0, target) == "high"
    assert severity(3000.0, target) == "critical"  # r = 0.50
    peers = {t.metric: t for t in DEFAULT_TARGETS}["peers_reachable"]  # min 0.5
    assert severity(0.46, peers) == "low"
    assert severity(0.25, peers) == "critical"
    faults = {t.metric: t for t in DEFAULT_TARGETS}["component_faults"]  # max 0
    assert severity(1, faults) == "critical"


# ----------------------------------------------------------------------------------------- detection


def test_escalation_exactly_at_the_third_consecutive_check():
    immune = ImmuneSystem()
    sources = []
    for _ in range(4):
        (issue,) = immune.check({"dissemination_ms": 2600.0})
        sources.append(issue.issue_source)
    assert sources == ["config", "config", "algorithm", "algorithm"]
    assert immune.consecutive["dissemination_ms"] == 4
    assert immune.issue_key(issue) == GOSSIP
    assert issue.affected_component == "gossip_protocol"
    assert issue.issue_type == "network_topology"
    assert (issue.current_value, issue.target_value) == (2600.0, 2000.0)
    assert issue.severity == "high"
    assert "dissemination_ms" in issue.description and "2600" in issue.description
    assert "2000" in issue.description and "4 consecutive checks" in issue.description


def test_healthy_value_resets_the_count():
    immune = ImmuneSystem()
    immune.check({"dissemination_ms": 2600.0})
    immune.check({"dissemination_ms": 2600.0})
    assert immune.check({"dissemination_ms": 2000.0}) == []  # the limit itself is healthy
    assert immune.consecutive["dissemination_ms"] == 0
    (issue,) = immune.check({"dissemination_ms": 2600.0})
    assert issue.issue_source == "config"
    assert immune.consecutive["dissemination_ms"] == 1


def test_missing_metrics_are_skipped_not_violations_nor_resets():
    immune = ImmuneSystem()
    immune.check({"dissemination_ms": 2600.0})
    immune.check({"dissemination_ms": 2600.0})
    assert immune.check({}) == []
    assert immune.check({"dissemination_ms": float("nan"), "unknown_metric": 1e9}) == []
    assert immune.consecutive["dissemination_ms"] == 2
    (issue,) = immune.check({"dissemination_ms": 2600.0})
    assert issue.issue_source == "algorithm"
    assert all(count == 0 for metric, count in immune.consecutive.items() if metric != "dissemination_ms")


def test_min_bound_peers_reachable():
    immune = ImmuneSystem()
    (issue,) = immune.check({"peers_reachable": 0.2})
    assert immune.issue_key(issue) == PEERS
    assert issue.current_value == 0.2 and issue.target_value == 0.5
    assert "below the minimum" in issue.description
    assert immune.check({"peers_reachable": 0.5}) == []
    assert immune.check({"peers_reachable": 0.9}) == []
    with pytest.raises(TypeError, match="peers_reachable"):
        immune.check({"peers_reachable": "lots"})


def test_component_faults_are_resource_issues_and_reported_only():
    immune = ImmuneSystem()
    remedies = Recorder(evolve_result=good_code())
    for _ in range(4):
        actions = asyncio.run(immune.step({"component_faults": 2}, remedies))
        assert kinds(actions) == ["reported"]
        assert actions[0].issue_key == ":component_faults"
    assert immune.history[-1].issue_source == "resource"
    assert immune.history[-1].severity == "critical"
    assert remedies.calls == []
    assert immune.check({"component_faults": 0}) == []


def test_history_keeps_the_last_200():
    immune = ImmuneSystem()
    for index in range(205):
        immune.check({"allocation_excess_pct": 10.0 + index})
    assert len(immune.history) == 200
    assert immune.history[0].current_value == 15.0
    assert immune.issue_key(immune.history[0]) == ALLOC
    assert len(immune._origin) == 200


def test_issue_key_of_a_copied_issue_and_of_a_foreign_one():
    immune = ImmuneSystem()
    (issue,) = immune.check({"peers_reachable": 0.1})
    copy = HealthIssue(**issue.__dict__)
    assert immune.issue_key(copy) == PEERS
    foreign = HealthIssue(
        "performance", "low", 1.0, 2.0, "x", "something odd", affected_component="gossip_protocol"
    )
    with pytest.raises(ValueError, match="target"):
        immune.issue_key(foreign)


def test_constructor_validation():
    with pytest.raises(ValueError, match="chronic_after"):
        ImmuneSystem(chronic_after=0)
    with pytest.raises(ValueError, match="more than once"):
        ImmuneSystem(DEFAULT_TARGETS + DEFAULT_TARGETS[:1])
    immune = ImmuneSystem(targets_from_config({"dissemination_ms": 100}), chronic_after=1)
    (issue,) = immune.check({"dissemination_ms": 150})
    assert issue.issue_source == "algorithm"


# ------------------------------------------------------------------------------------------ remedies


def test_recorder_is_a_remedies():
    assert isinstance(Recorder(), Remedies)


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_config_remedy_first_then_code_upgrade_when_chronic():
    immune = ImmuneSystem()
    remedies = Recorder(evolve_result=good_code())
    first = await immune.step({"dissemination_ms": 2600.0}, remedies)
    assert kinds(first) == ["config_change"]
    assert first[0].issue_key == GOSSIP
    assert first[0].proposal_id == "cfg0"
    assert remedies.kinds("config") == [("config", GOSSIP, {"gossip_fanout": 4})]
    assert first[0].to_dict() == {
        "issue_key": GOSSIP,
        "kind": "config_change",
        "proposal_id": "cfg0",
        "detail": first[0].detail,
    }

    remedies.close_all()  # the config change was voted on and closed; the problem persists
    second = await immune.step({"dissemination_ms": 2600.0}, remedies)
    assert kinds(second) == ["config_change"]
    remedies.close_all()
    third = await immune.step({"dissemination_ms": 2600.0}, remedies)
    assert kinds(third) == ["code_upgrade"]
    assert third[0].proposal_id is not None and third[0].proposal_id.startswith("code")
    assert remedies.kinds("evolve") == [("evolve", "gossip_protocol")]
    assert remedies.kinds("code") == [("code", GOSSIP, "gossip_protocol")]


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_allocation_without_config_remedy_is_reported_then_evolved():
    immune = ImmuneSystem()
    remedies = Recorder(evolve_result=good_code("task_allocation"))
    for _ in range(2):
        assert kinds(await immune.step({"allocation_excess_pct": 4.0}, remedies)) == ["reported"]
    assert remedies.calls == []
    actions = await immune.step({"allocation_excess_pct": 4.0}, remedies)
    assert kinds(actions) == ["code_upgrade"]
    assert actions[0].issue_key == ALLOC


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "result",
    [
        None,
        RuntimeError("model server down"),
        GeneratedCode(
            CodeLanguage.RUST, "x", "d", "gossip_protocol", None, wasm_binary=b"\0asm"
        ),  # not measured
        GeneratedCode(
            CodeLanguage.RUST,
            "x",
            "d",
            "gossip_protocol",
            -3.0,
            wasm_binary=b"\0asm",
            evidence={},
            measured=True,
        ),
        GeneratedCode(
            CodeLanguage.RUST, "x", "d", "gossip_protocol", 8.0, wasm_binary=None, evidence={}, measured=True
        ),
    ],
    ids=["none", "raises", "unmeasured", "worse", "no-wasm"],
)
async def test_evolve_failure_falls_back_to_the_config_remedy(result, caplog):
    immune = ImmuneSystem(chronic_after=1)
    remedies = Recorder(evolve_result=result)
    with caplog.at_level(logging.WARNING, logger="synapse_ng.immune.system"):
        actions = await immune.step({"peers_reachable": 0.2}, remedies)
    assert kinds(actions) == [
        "evolve_error" if isinstance(result, Exception) else "evolve_failed",
        "config_change",
    ]
    assert actions[0].proposal_id is None and actions[0].detail
    assert actions[1].proposal_id is not None
    assert remedies.kinds("config") == [("config", PEERS, {"anti_entropy_interval_s": 1.0})]
    assert remedies.kinds("code") == []
    assert immune.in_progress == frozenset()
    if isinstance(result, Exception):
        assert "model server down" in actions[0].detail
        assert "model server down" in caplog.text


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_with_the_engine_off_a_chronic_issue_is_reported_and_its_config_remedy_still_proposed():
    immune = ImmuneSystem(chronic_after=1)
    remedies = Recorder(evolve_result=None)
    remedies.engine_enabled = False
    actions = await immune.step({"peers_reachable": 0.2, "tally_fuel_per_vote": 900.0}, remedies)
    assert sorted((a.issue_key, a.kind) for a in actions) == [
        (PEERS, "config_change"),
        (PEERS, "reported"),
        ("raft_consensus:tally_fuel_per_vote", "reported"),
    ]
    assert all("engine is off" in a.detail.lower() for a in actions)
    assert remedies.kinds("evolve") == [] and remedies.kinds("config") == [
        ("config", PEERS, {"anti_entropy_interval_s": 1.0})
    ]


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_evolve_failure_without_config_remedy_is_just_evolve_failed():
    immune = ImmuneSystem(chronic_after=1)
    remedies = Recorder(evolve_result=None)
    actions = await immune.step({"tally_fuel_per_vote": 900.0}, remedies)
    assert kinds(actions) == ["evolve_failed"]
    assert actions[0].issue_key == "raft_consensus:tally_fuel_per_vote"
    assert remedies.kinds("config") == []


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_never_a_second_proposal_while_one_is_open():
    immune = ImmuneSystem()
    remedies = Recorder(evolve_result=good_code())
    results = [kinds(await immune.step({"dissemination_ms": 2600.0}, remedies)) for _ in range(5)]
    assert results == [["config_change"]] + [["skipped_open_proposal"]] * 4
    assert len(remedies.kinds("config")) == 1
    assert remedies.kinds("evolve") == []  # chronic, but the open proposal still blocks the evolve
    skipped = await immune.step({"dissemination_ms": 2600.0}, remedies)
    assert skipped[0].proposal_id == "cfg0"
    # another key is not blocked by it
    other = await immune.step({"peers_reachable": 0.1}, remedies)
    assert kinds(other) == ["config_change"]


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_a_proposal_opened_while_evolving_wins():
    immune = ImmuneSystem(chronic_after=1)
    remedies = Recorder(evolve_result=good_code())
    remedies.hold = asyncio.Event()
    task = asyncio.create_task(immune.step({"dissemination_ms": 2600.0}, remedies))
    await remedies.evolving.wait()
    remedies.open[GOSSIP] = "from-another-node"
    remedies.hold.set()
    actions = await task
    assert kinds(actions) == ["skipped_open_proposal"]
    assert actions[0].proposal_id == "from-another-node"
    assert remedies.kinds("code") == [] and remedies.kinds("config") == []


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_not_two_evolves_in_flight_for_one_key():
    immune = ImmuneSystem(chronic_after=1)
    remedies = Recorder(evolve_result=good_code())
    remedies.hold = asyncio.Event()
    first = asyncio.create_task(immune.step({"dissemination_ms": 2600.0}, remedies))
    await remedies.evolving.wait()
    assert immune.in_progress == {GOSSIP}

    second = await immune.step({"dissemination_ms": 2700.0, "tally_fuel_per_vote": 900.0}, remedies)
    assert [(a.issue_key, a.kind) for a in second] == [
        ("raft_consensus:tally_fuel_per_vote", "code_upgrade"),
        (GOSSIP, "skipped_in_progress"),
    ]
    # a reset to "config" meanwhile must not slip a config proposal in beside the running evolve
    immune.check({"dissemination_ms": 1.0})
    third = await immune.step({"dissemination_ms": 2600.0}, remedies)
    assert kinds(third) == ["skipped_in_progress"]
    assert remedies.kinds("evolve") == [("evolve", "gossip_protocol"), ("evolve", "raft_consensus")]

    remedies.hold.set()
    assert kinds(await first) == ["code_upgrade"]
    assert immune.in_progress == frozenset()
    assert len(remedies.kinds("code")) == 2
    assert remedies.kinds("config") == []


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_in_progress_is_cleared_when_evolve_is_cancelled():
    immune = ImmuneSystem(chronic_after=1)
    remedies = Recorder(evolve_result=good_code())
    remedies.hold = asyncio.Event()
    task = asyncio.create_task(immune.step({"dissemination_ms": 2600.0}, remedies))
    await remedies.evolving.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert immune.in_progress == frozenset()


def test_action_kind_is_checked():
    with pytest.raises(ValueError, match="kind"):
        Action("a:b", "teleported", None, "")
