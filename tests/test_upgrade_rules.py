"""Rollout and health rules: pure functions of the message set, the same on every node."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

import pytest

from synapse_ng.upgrade import (
    DEFAULT_STAGES,
    RolloutError,
    WindowStats,
    judge_window,
    plan_stages,
    rollback_body,
    rollout_status,
    stage_report_body,
    validate_rollback_body,
    validate_stage_report_body,
)


@dataclass(frozen=True)
class Msg:
    author: str
    created_at: float
    body: dict
    nonce: str = ""  # distinguishes two messages with the same content

    @property
    def id(self) -> str:
        return hashlib.sha256(
            repr((self.author, self.created_at, sorted(self.body.items()), self.nonce)).encode()
        ).hexdigest()


def node(i: int) -> str:
    return hashlib.sha256(f"node-{i}".encode()).hexdigest()


def pid(label: str = "p") -> str:
    return hashlib.sha256(label.encode()).hexdigest()


MEMBERS5 = [node(i) for i in range(5)]
P = pid()


def report(
    author: str, stage: int, ok: bool = True, at: float = 0.0, reason: str = "", nonce: str = ""
) -> Msg:
    return Msg(author, at, stage_report_body(P, stage, ok, {"excess_pct": 1.5, "calls": 10}, reason), nonce)


def rollback(author: str, reason: str, at: float, automatic: bool = False) -> Msg:
    return Msg(author, at, rollback_body(P, reason, automatic))


# ------------------------------------------------------------------------------------ plan_stages


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 20])
def test_plan_stages_partitions_members(n):
    members = [node(i) for i in range(n)]
    stages = plan_stages(P, members)
    assert all(len(stage) >= 1 for stage in stages)
    flat = [m for stage in stages for m in stage]
    assert len(flat) == len(set(flat)) == n
    assert set(flat) == set(members)
    assert len(stages) <= len(DEFAULT_STAGES)
    shuffled = members[:]
    for seed in range(3):
        random.Random(seed).shuffle(shuffled)
        assert plan_stages(P, shuffled) == stages
        assert plan_stages(P, tuple(reversed(shuffled))) == stages


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (1, [1]),
        (2, [1, 1]),
        (3, [1, 1, 1]),
        (5, [1, 2, 2]),
        (10, [1, 4, 5]),
        (20, [2, 8, 10]),
        (30, [3, 12, 15]),
    ],
)
def test_plan_stage_sizes(n, sizes):
    assert [len(s) for s in plan_stages(P, [node(i) for i in range(n)])] == sizes


def test_plan_stages_follows_the_hash_order_and_differs_by_proposal():
    members = [node(i) for i in range(20)]
    stages = plan_stages(P, members)
    order = sorted(members, key=lambda m: hashlib.sha256((P + m).encode()).hexdigest())
    assert [m for s in stages for m in s] == order
    assert plan_stages(pid("other"), members) != stages


def test_plan_stages_custom_fractions():
    members = [node(i) for i in range(4)]
    assert [len(s) for s in plan_stages(P, members, (0.25, 0.5, 0.75, 1.0))] == [1, 1, 1, 1]
    assert [len(s) for s in plan_stages(P, members, (1.0,))] == [4]
    # a stage that would add nobody is dropped
    assert [len(s) for s in plan_stages(P, [node(0), node(1)], (0.1, 0.2, 0.5, 1.0))] == [1, 1]


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((), "empty"),
        ((0.5, 0.9), "last must be 1.0"),
        ((0.5, 0.5, 1.0), "strictly increasing"),
        ((0.6, 0.2, 1.0), "strictly increasing"),
        ((0.0, 1.0), r"\(0, 1\]"),
        ((0.5, 1.5), r"\(0, 1\]"),
        ((math.nan, 1.0), "finite"),
        (("0.5", 1.0), "finite"),
    ],
)
def test_plan_stages_rejects_bad_fractions(fractions, match):
    with pytest.raises(RolloutError, match=match):
        plan_stages(P, MEMBERS5, fractions)


def test_plan_stages_rejects_bad_members():
    with pytest.raises(RolloutError, match="no members"):
        plan_stages(P, [])
    with pytest.raises(RolloutError, match="more than once"):
        plan_stages(P, [node(0), node(1), node(0)])
    assert issubclass(RolloutError, ValueError)


# --------------------------------------------------------------------------------------- bodies


def test_bodies_round_trip():
    body = stage_report_body(
        P, 2, False, {"fuel_per_vote": 812.5, "traps": 0, "objective": None}, "regressed"
    )
    assert body == {
        "proposal_id": P,
        "stage": 2,
        "ok": False,
        "figures": {"fuel_per_vote": 812.5, "traps": 0, "objective": None},
        "reason": "regressed",
    }
    validate_stage_report_body(body)
    assert rollback_body(P, "operator said so", False) == {
        "proposal_id": P,
        "reason": "operator said so",
        "automatic": False,
    }


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"proposal_id": "abc"}, "64 lowercase hex"),
        ({"proposal_id": P.upper()}, "64 lowercase hex"),
        ({"stage": -1}, "integer >= 0"),
        ({"stage": 1.0}, "integer >= 0"),
        ({"stage": True}, "integer >= 0"),
        ({"ok": 1}, "ok is 1: expected true or false"),
        ({"figures": []}, "figures is list"),
        ({"figures": {"x": math.inf}}, "figure 'x' is inf"),
        ({"figures": {"x": "1"}}, "figure 'x'"),
        ({"figures": {"x": True}}, "figure 'x'"),
        ({"figures": {1: 2}}, "figure name 1"),
        ({"reason": 3}, "reason is int"),
        ({"reason": "x" * 2001}, "2001 characters"),
        ({"extra": 1}, "unknown keys extra"),
    ],
)
def test_stage_report_body_validation(change, match):
    body = {"proposal_id": P, "stage": 0, "ok": True, "figures": {}, "reason": ""} | change
    with pytest.raises(RolloutError, match=match):
        validate_stage_report_body(body)


def test_body_validation_missing_and_wrong_type():
    with pytest.raises(RolloutError, match="lacks figures, reason"):
        validate_stage_report_body({"proposal_id": P, "stage": 0, "ok": True})
    with pytest.raises(RolloutError, match="expected a JSON object"):
        validate_rollback_body(["x"])
    with pytest.raises(RolloutError, match="automatic is 'yes'"):
        validate_rollback_body({"proposal_id": P, "reason": "", "automatic": "yes"})
    with pytest.raises(RolloutError, match="2000"):
        rollback_body(P, "y" * 2001, True)
    validate_stage_report_body(
        {"proposal_id": P, "stage": 0, "ok": True, "figures": {}, "reason": "x" * 2000}
    )


# -------------------------------------------------------------------------------------- rollout


def test_happy_rollout_progression():
    stages = plan_stages(P, MEMBERS5)
    first, second, third = stages
    msgs: list[Msg] = []

    status = rollout_status(P, MEMBERS5, msgs, [])
    assert (status.state, status.active_stage) == ("in_progress", 0)
    assert status.runs_new_version(first[0]) and not status.runs_new_version(second[0])
    assert status.needs_report(first[0]) == 0 and status.needs_report(second[0]) is None
    assert status.stage_of(third[1]) == 2

    msgs.append(report(first[0], 0, at=10))
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.active_stage == 1 and status.reports == {0: {first[0]: True}}
    assert status.needs_report(first[0]) is None
    assert status.needs_report(second[0]) == 1 and status.runs_new_version(second[1])
    assert not status.runs_new_version(third[0])

    msgs.append(report(second[0], 1, at=20))
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.active_stage == 1  # one of two reported
    assert status.needs_report(second[0]) is None and status.needs_report(second[1]) == 1

    msgs += [report(second[1], 1, at=21), report(third[0], 2, at=31)]
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.active_stage == 2 and status.state == "in_progress"

    msgs.append(report(third[1], 2, at=32))
    status = rollout_status(P, MEMBERS5, list(reversed(msgs)), [])  # arrival order does not matter
    assert status.state == "completed" and status.active_stage is None
    assert all(status.runs_new_version(m) for m in MEMBERS5)
    assert all(status.needs_report(m) is None for m in MEMBERS5)
    assert status.rollback_reason is None and status.rolled_back_by is None
    d = status.to_dict()
    assert d["state"] == "completed" and d["reports"]["2"] == {third[0]: True, third[1]: True}
    assert d["stages"] == stages
    assert not status.runs_new_version("not-a-member")
    with pytest.raises(RolloutError, match="not a member"):
        status.stage_of("not-a-member")


def test_not_ok_report_rolls_back_with_its_reason():
    first, second, _ = plan_stages(P, MEMBERS5)
    msgs = [
        report(first[0], 0, at=10),
        report(second[0], 1, ok=False, at=20, reason="3 traps, 0 fallbacks in the window"),
        report(second[1], 1, at=21),
    ]
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.state == "rolled_back" and status.active_stage is None
    assert status.rollback_reason == "3 traps, 0 fallbacks in the window"
    assert status.rolled_back_by == second[0]
    assert not any(status.runs_new_version(m) for m in MEMBERS5)
    assert all(status.needs_report(m) is None for m in MEMBERS5)
    # an empty reason still yields an explanation
    bare = rollout_status(P, MEMBERS5, [report(first[0], 0, ok=False, at=1)], [])
    assert (
        bare.state == "rolled_back"
        and "stage 0 report" in bare.rollback_reason
        and "not ok" in bare.rollback_reason
    )


def test_operator_rollback_mid_rollout():
    first, second, _ = plan_stages(P, MEMBERS5)
    msgs = [report(first[0], 0, at=10), report(second[0], 1, at=20), report(second[1], 1, at=40)]
    rb = [
        rollback(second[1], "latency doubled on my dashboard", at=30),
        rollback(first[0], "later one", at=35),
    ]
    status = rollout_status(P, MEMBERS5, msgs, rb)
    assert status.state == "rolled_back"
    assert status.rollback_reason == "latency doubled on my dashboard"
    assert status.rolled_back_by == second[1]
    assert not status.runs_new_version(first[0])


def test_rollback_after_completion_still_rolls_back():
    (only,) = plan_stages(P, [node(0)])
    msgs = [report(only[0], 0, at=1)]
    assert rollout_status(P, [node(0)], msgs, []).state == "completed"
    status = rollout_status(P, [node(0)], msgs, [rollback(node(0), "", at=99, automatic=True)])
    assert status.state == "rolled_back" and status.rollback_reason == "automatic rollback"


def test_rollback_from_non_member_or_other_proposal_is_ignored():
    rb_outsider = rollback(node(99), "I am not allowed", at=1)
    rb_other = Msg(MEMBERS5[0], 1, rollback_body(pid("other"), "other proposal", False))
    status = rollout_status(P, MEMBERS5, [], [rb_outsider, rb_other])
    assert status.state == "in_progress" and status.active_stage == 0


def test_report_for_stage_not_yet_active_is_ignored():
    first, second, _ = plan_stages(P, MEMBERS5)
    early = report(second[0], 1, ok=False, at=5, reason="premature")  # stage 1 not active at t=5
    msgs = [early, report(first[0], 0, at=10)]
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.state == "in_progress" and status.active_stage == 1
    assert status.reports.get(1, {}) == {}
    assert status.needs_report(second[0]) == 1  # its early report does not count
    # its first report made while stage 1 is active does
    status = rollout_status(P, MEMBERS5, msgs + [report(second[0], 1, at=20)], [])
    assert status.reports[1] == {second[0]: True}


def test_report_for_another_nodes_stage_is_ignored():
    first, second, _ = plan_stages(P, MEMBERS5)
    status = rollout_status(P, MEMBERS5, [report(second[0], 0, ok=False, at=1)], [])
    assert status.state == "in_progress" and status.active_stage == 0 and status.reports.get(0, {}) == {}
    status = rollout_status(P, MEMBERS5, [report(first[0], 7, at=1)], [])
    assert status.active_stage == 0


def test_duplicate_and_replayed_reports_count_once():
    first, second, _ = plan_stages(P, MEMBERS5)
    ok0 = report(first[0], 0, at=10)
    ok1 = report(second[0], 1, at=20)
    # the same message three times (replay), then a second, later, different report by the same node
    msgs = [ok0, ok0, ok1, ok1, ok1, report(second[0], 1, at=25, nonce="again")]
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.active_stage == 1 and status.reports[1] == {second[0]: True}
    assert status.needs_report(second[1]) == 1
    # only the first report of a node counts: a later not-ok one changes nothing ...
    later_bad = report(second[0], 1, ok=False, at=26, reason="changed my mind")
    assert rollout_status(P, MEMBERS5, msgs + [later_bad], []).state == "in_progress"
    # ... and an earlier not-ok one wins over a later ok one
    early_bad = report(first[0], 0, ok=False, at=9, reason="first word")
    status = rollout_status(P, MEMBERS5, msgs + [early_bad], [])
    assert status.state == "rolled_back" and status.rollback_reason == "first word"


def test_ties_are_broken_by_id_deterministically():
    first, *_ = plan_stages(P, MEMBERS5)
    a = report(first[0], 0, ok=True, at=10, nonce="a")
    b = report(first[0], 0, ok=False, at=10, nonce="b", reason="bad")
    expected = "in_progress" if a.id < b.id else "rolled_back"  # the smaller id is the first report
    for order in ([a, b], [b, a]):
        assert rollout_status(P, MEMBERS5, order, []).state == expected


def test_reports_from_non_members_are_ignored():
    outsider = node(99)
    msgs = [report(outsider, 0, ok=False, at=1, reason="spoof"), report(outsider, 0, at=2)]
    status = rollout_status(P, MEMBERS5, msgs, [])
    assert status.state == "in_progress" and status.active_stage == 0 and status.reports.get(0, {}) == {}


def test_malformed_and_foreign_messages_are_ignored():
    first, *_ = plan_stages(P, MEMBERS5)
    bad_body = Msg(first[0], 1, {"proposal_id": P, "stage": 0, "ok": "yes", "figures": {}, "reason": ""})
    other = Msg(first[0], 1, stage_report_body(pid("other"), 0, False, {}, "other proposal"))
    status = rollout_status(P, MEMBERS5, [bad_body, other], [])
    assert status.state == "in_progress" and status.reports.get(0, {}) == {}


# --------------------------------------------------------------------------------------- health


def test_judge_window_traps_and_fallbacks():
    ok, reason = judge_window(None, WindowStats(calls=40, traps=2, fallbacks=1), "min")
    assert not ok and reason == "2 traps, 1 fallback in the window"
    ok, reason = judge_window(None, WindowStats(calls=1, traps=1), "max")
    assert not ok and reason == "1 trap, 0 fallbacks in the window"


def test_judge_window_ok_reasons():
    ok, reason = judge_window(None, WindowStats(), "min")
    assert ok and "no calls in the window" in reason and "no previous window" in reason
    ok, reason = judge_window(WindowStats(calls=5, objective=2.0), WindowStats(calls=7), "min")
    assert ok and "7 calls, no traps or fallbacks" in reason and "not measured" in reason
    ok, reason = judge_window(WindowStats(calls=5, objective=2.0), WindowStats(calls=7, objective=1.5), "min")
    assert ok and "objective 1.5 vs 2 before" in reason and "not worse" in reason


@pytest.mark.parametrize(
    ("direction", "previous", "current", "tolerance", "expected"),
    [
        ("min", 100.0, 105.0, 5.0, True),  # exactly at the tolerance
        ("min", 1.0, 1.05, 5.0, True),  # at the tolerance, with float noise
        ("min", 100.0, 105.01, 5.0, False),
        ("max", 100.0, 95.0, 5.0, True),
        ("max", 100.0, 94.99, 5.0, False),
        ("max", 100.0, 120.0, 5.0, True),
        ("min", 100.0, 80.0, 0.0, True),
        ("min", 100.0, 100.0, 0.0, True),
        ("min", 100.0, 100.5, 0.0, False),
        ("min", 0.0, 0.0, 5.0, True),
        ("min", 0.0, 0.1, 5.0, False),  # worse than a perfect 0: any increase is too much
        ("max", -10.0, -10.4, 5.0, True),  # relative to |previous|
        ("max", -10.0, -10.6, 5.0, False),
    ],
)
def test_judge_window_objective_tolerance(direction, previous, current, tolerance, expected):
    ok, reason = judge_window(
        WindowStats(calls=10, objective=previous),
        WindowStats(calls=10, objective=current),
        direction,
        tolerance_pct=tolerance,
    )
    assert ok is expected, reason
    if not expected:
        assert f"{current:.6g}" in reason and f"{previous:.6g}" in reason and "tolerance" in reason


def test_judge_window_reports_both_failures():
    ok, reason = judge_window(
        WindowStats(calls=9, objective=10.0), WindowStats(calls=9, fallbacks=2, objective=12.0), "min"
    )
    assert not ok
    assert (
        "0 traps, 2 fallbacks in the window" in reason
        and "worse by 20.00%" in reason
        and "12 vs 10" in reason
    )


def test_judge_window_rejects_bad_input():
    with pytest.raises(ValueError, match="neither 'min'"):
        judge_window(None, WindowStats(), "lower")
    with pytest.raises(ValueError, match="tolerance_pct"):
        judge_window(None, WindowStats(), "min", tolerance_pct=-1)
    with pytest.raises(ValueError, match="current window traps"):
        judge_window(None, WindowStats(traps=-1), "min")
    with pytest.raises(ValueError, match="previous window objective"):
        judge_window(WindowStats(objective=math.nan), WindowStats(), "min")
