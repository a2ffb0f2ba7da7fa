"""Governance: proposal and vote bodies, the tally through raft_consensus (the Python reference and the
real baseline module in the sandbox), and the checks before a vote on a code upgrade, with real rustc,
the real sandbox and real re-runs of evidence on the tiny test component (tests/square_component.py),
including attacks by a proposer who tries to steer the verification (case counts, seeds, memory)."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from dataclasses import dataclass

import pytest

import synapse_ng.evolution.evidence as evidence_module
import synapse_ng.governance.verify as verify_module
from square_component import SKELETON, SquareSum
from synapse_ng.components import Split, split_skeleton
from synapse_ng.components.raft_consensus.component import RaftConsensus
from synapse_ng.components.raft_consensus.tally import TallyInput, Vote, reference_tally
from synapse_ng.evolution import BuiltModule, build_candidate, evaluate
from synapse_ng.evolution.build import build_baseline
from synapse_ng.governance import (
    CHOICES,
    PROPOSAL_TYPES,
    GovernanceRules,
    Outcome,
    ProposalError,
    Verdict,
    decide,
    proposal_body,
    quorum_count,
    tally_input,
    validate_proposal_body,
    validate_vote_body,
    verify_code_upgrade,
    vote_body,
)
from synapse_ng.governance.verify import CHECKS, VerifyLimits
from synapse_ng.models import CodeLanguage
from synapse_ng.toolchain import compile_source
from synapse_ng.wasm.sandbox import Sandbox

NOW = 1_750_000_000.0
PID = "ab" * 32


@dataclass(frozen=True)
class Msg:
    """Stands in for a signed envelope: what the tally reads of one."""

    author: str
    created_at: float
    body: dict
    id: str


def member(i: int) -> str:
    return hashlib.sha256(f"node-{i}".encode()).hexdigest()


def vote(author: str, choice: str, seq: int, created_at: float = NOW + 1) -> Msg:
    body = vote_body(PID, choice, seq)
    text = json.dumps({"author": author, "created_at": created_at, "body": body}, sort_keys=True)
    return Msg(author, created_at, body, hashlib.sha256(text.encode()).hexdigest())


def config_proposal(**overrides) -> dict:
    body = proposal_body(
        "config_change",
        "raise the fanout",
        "gossip is slow",
        {"changes": {"gossip_fanout": 4}},
        rules=GovernanceRules(),
        now=NOW,
    )
    body.update(overrides)
    return body


def code_params(**overrides) -> dict:
    params = {
        "component": "square_sum",
        "wasm_sha256": "0" * 64,
        "wasm_size": 100,
        "language": "rust",
        "source": "fn main() {}",
        "evidence": {},
        "improvement_pct": 12.5,
        "issue": "slow tally",
    }
    params.update(overrides)
    return params


# ------------------------------------------------------------------------------------------ proposals


def test_proposal_body_takes_the_rules_defaults_per_type():
    config = config_proposal()
    assert config["deadline"] == NOW + 30.0 and config["quorum"] == 0.5 and config["threshold"] == [1, 2]
    code = proposal_body("code_upgrade", "faster tally", "", code_params(), rules=GovernanceRules(), now=NOW)
    assert code["threshold"] == [2, 3]
    rules = GovernanceRules(quorum=0.75, code_threshold=[3, 4], deadline_s=5)
    custom = proposal_body("code_upgrade", "t", "", code_params(), rules=rules, now=NOW)
    assert custom["deadline"] == NOW + 5 and custom["quorum"] == 0.75 and custom["threshold"] == [3, 4]
    # A body survives the JSON trip it makes inside an envelope.
    validate_proposal_body(json.loads(json.dumps(code)), now=NOW, rules=GovernanceRules())
    assert PROPOSAL_TYPES[:2] == ("config_change", "code_upgrade") and CHOICES == {
        "yes": 0,
        "no": 1,
        "abstain": 2,
    }


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"quorum": 0}, "quorum must be a number in (0, 1]"),
        ({"quorum": 1.5}, "quorum"),
        ({"quorum": True}, "quorum"),
        ({"config_threshold": (2, 1)}, "config_threshold must satisfy 0 < num <= den"),
        ({"code_threshold": (0, 3)}, "code_threshold"),
        ({"code_threshold": (1, 70000)}, "code_threshold"),
        ({"code_threshold": (1, 2, 3)}, "code_threshold must be [num, den]"),
        ({"deadline_s": 0}, "deadline_s must be a finite number > 0"),
        ({"deadline_s": float("inf")}, "deadline_s"),
        ({"grace_s": -1}, "grace_s must be a finite number >= 0"),
        ({"deadline_s": 100, "max_deadline_s": 10}, "exceeds max_deadline_s"),
    ],
)
def test_impossible_rules_are_refused(kwargs, needle):
    with pytest.raises(ProposalError, match=None) as error:
        GovernanceRules(**kwargs)
    assert needle in str(error.value)
    assert isinstance(error.value, ValueError)


def test_zero_grace_is_allowed():
    assert GovernanceRules(grace_s=0).grace_s == 0


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda b: b.pop("title"), "missing title"),
        (lambda b: b.__setitem__("extra", 1), "unknown extra"),
        (lambda b: b.__setitem__("type", "coup"), "'type' must be one of config_change, code_upgrade"),
        (lambda b: b.__setitem__("title", "  "), "'title' must be a non-empty string"),
        (lambda b: b.__setitem__("title", "x" * 301), "'title' must be at most 300"),
        (lambda b: b.__setitem__("description", None), "'description' must be a string"),
        (lambda b: b.__setitem__("quorum", 0.0), "'quorum' must be a number in (0, 1]"),
        (lambda b: b.__setitem__("quorum", "0.5"), "'quorum'"),
        (lambda b: b.__setitem__("threshold", [1]), "'threshold' must be [num, den]"),
        (lambda b: b.__setitem__("threshold", [True, 2]), "'threshold' must be [num, den]"),
        (lambda b: b.__setitem__("threshold", [3, 2]), "'threshold' must satisfy 0 < num <= den <= 65535"),
        (lambda b: b.__setitem__("threshold", [1, 65536]), "65535"),
        (lambda b: b.__setitem__("deadline", float("nan")), "'deadline' must be a finite number"),
        (lambda b: b.__setitem__("deadline", True), "'deadline'"),
        (lambda b: b.__setitem__("params", []), "'params' must be a JSON object"),
        (lambda b: b.__setitem__("params", {}), "config_change params: missing changes"),
        (lambda b: b.__setitem__("params", {"changes": {}}), "params.changes must be a non-empty"),
        (
            lambda b: b.__setitem__("params", {"changes": {"k": None}}),
            "params.changes['k'] must be a JSON scalar",
        ),
        (lambda b: b.__setitem__("params", {"changes": {"k": [1]}}), "JSON scalar"),
        (lambda b: b.__setitem__("params", {"changes": {"k": float("inf")}}), "JSON scalar"),
        (lambda b: b.__setitem__("params", {"changes": {"": 1}}), "keys must be non-empty strings"),
        (lambda b: b.__setitem__("params", {"changes": {"k": 1}, "more": 2}), "unknown more"),
    ],
)
def test_a_malformed_config_change_names_the_field(change, needle):
    body = config_proposal()
    change(body)
    with pytest.raises(ProposalError) as error:
        validate_proposal_body(body)
    assert needle in str(error.value)


def test_config_change_values_may_be_any_json_scalar():
    validate_proposal_body(config_proposal(params={"changes": {"a": "x", "b": 1, "c": 0.5, "d": False}}))


@pytest.mark.parametrize(
    "override, needle",
    [
        ({"component": ""}, "params.component must be a non-empty string"),
        ({"wasm_sha256": "A" * 64}, "params.wasm_sha256 must be 64 lowercase hex"),
        ({"wasm_sha256": "0" * 63}, "params.wasm_sha256"),
        ({"wasm_size": 0}, "params.wasm_size must be an integer in 1..16777216"),
        ({"wasm_size": 16 * 1024 * 1024 + 1}, "params.wasm_size"),
        ({"wasm_size": True}, "params.wasm_size"),
        ({"wasm_size": 10.0}, "params.wasm_size"),
        ({"language": "python"}, "params.language must be one of rust, c, wat"),
        ({"source": None}, "params.source must be a string"),
        ({"source": "é" * 100_001}, "params.source must be at most 200000 bytes"),
        ({"evidence": []}, "params.evidence must be a JSON object"),
        ({"improvement_pct": float("nan")}, "params.improvement_pct must be a finite number"),
        ({"improvement_pct": False}, "params.improvement_pct"),
        ({"issue": 3}, "params.issue must be a string"),
    ],
)
def test_a_malformed_code_upgrade_names_the_field(override, needle):
    with pytest.raises(ProposalError) as error:
        proposal_body("code_upgrade", "t", "", code_params(**override), rules=GovernanceRules(), now=NOW)
    assert needle in str(error.value)


def test_code_upgrade_params_must_have_exactly_the_spec_keys():
    params = code_params()
    del params["issue"]
    params["bonus"] = 1
    with pytest.raises(ProposalError, match="code_upgrade params: missing issue; unknown bonus"):
        proposal_body("code_upgrade", "t", "", params, rules=GovernanceRules(), now=NOW)


def test_a_deadline_too_far_ahead_is_refused_only_when_now_is_known():
    body = config_proposal(deadline=NOW + 8 * 86400)
    validate_proposal_body(body)  # no clock: the shape alone is fine
    with pytest.raises(ProposalError, match="'deadline' is 691200 s away; at most 604800 s ahead"):
        validate_proposal_body(body, now=NOW, rules=GovernanceRules())
    validate_proposal_body(body, now=NOW, rules=GovernanceRules(max_deadline_s=9 * 86400))
    # A past deadline is fine: an old proposal replayed to a restarted node is still that proposal.
    validate_proposal_body(config_proposal(deadline=NOW - 100), now=NOW)


def test_vote_body_is_validated():
    body = vote_body(PID, "abstain", 2**63 - 1, "unsure")
    assert body == {"proposal_id": PID, "choice": "abstain", "seq": 2**63 - 1, "reason": "unsure"}
    validate_vote_body(vote_body(PID, "yes", 0))


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"proposal_id": "AB" * 32}, "'proposal_id' must be 64 lowercase hex"),
        ({"proposal_id": 5}, "'proposal_id'"),
        ({"choice": "maybe"}, "'choice' must be one of yes, no, abstain"),
        ({"choice": ["yes"]}, "'choice'"),
        ({"seq": -1}, "'seq' must be an integer in 0..2^63-1"),
        ({"seq": 2**63}, "'seq'"),
        ({"seq": True}, "'seq'"),
        ({"seq": 1.0}, "'seq'"),
        ({"reason": "x" * 2001}, "'reason' must be at most 2000"),
        ({"reason": None}, "'reason' must be a string"),
        ({"extra": 1}, "unknown extra"),
    ],
)
def test_a_malformed_vote_names_the_field(change, needle):
    body = {"proposal_id": PID, "choice": "yes", "seq": 1, "reason": ""}
    body.update(change)
    with pytest.raises(ProposalError) as error:
        validate_vote_body(body)
    assert needle in str(error.value)
    with pytest.raises(ProposalError, match="missing seq"):
        validate_vote_body({"proposal_id": PID, "choice": "yes", "reason": ""})


# ------------------------------------------------------------------------------------------ tally

MEMBERS = [member(i) for i in range(5)]
ROSTER = sorted(MEMBERS)


def test_quorum_count_reads_the_fraction_as_written():
    assert quorum_count(0.5, 5) == 3 and quorum_count(0.5, 4) == 2
    assert quorum_count(0.1, 10) == 1  # not 2, as 0.1 * 10 in binary floating point would give
    assert quorum_count(0.7, 10) == 7 and quorum_count(1.0, 7) == 7 and quorum_count(0.5, 0) == 0


def test_tally_input_maps_votes_to_raft_records():
    body = config_proposal()
    late = vote(MEMBERS[0], "no", 9, created_at=body["deadline"] + 0.001)
    stranger = vote(member(99), "yes", 1)
    big = 1_750_000_000_000_000_000  # time_ns: far beyond raft's u32 seq
    votes = [
        vote(MEMBERS[1], "yes", big + 5, created_at=NOW + 3),
        vote(MEMBERS[1], "no", big, created_at=NOW + 2),
        vote(MEMBERS[0], "abstain", 7, created_at=NOW + 1),
        vote(MEMBERS[1], "abstain", big + 5, created_at=NOW + 4),
        vote(MEMBERS[2], "no", 1, created_at=body["deadline"]),  # exactly at the deadline counts
        late,
        stranger,
    ]
    tally = tally_input(body, votes, reversed(MEMBERS))
    index = {m: ROSTER.index(m) for m in MEMBERS}
    assert tally.votes == (
        Vote(index[MEMBERS[0]], 0, 2, 1),
        Vote(index[MEMBERS[1]], 0, 1, 1),
        Vote(index[MEMBERS[1]], 1, 0, 1),
        Vote(index[MEMBERS[1]], 1, 2, 1),
        Vote(index[MEMBERS[2]], 0, 1, 1),
    )
    assert (tally.quorum, tally.num, tally.den) == (3, 1, 2)


def test_the_input_order_is_the_same_whatever_order_gossip_delivered():
    body = config_proposal()
    votes = [
        vote(m, random.Random(i).choice(list(CHOICES)), i % 3, created_at=NOW + (i % 2))
        for i, m in enumerate(MEMBERS * 3)
    ]
    first = tally_input(body, votes, MEMBERS)
    shuffled = votes[:]
    random.Random(7).shuffle(shuffled)
    assert tally_input(body, shuffled, MEMBERS) == first


def test_a_proposal_is_open_until_deadline_plus_grace_with_figures_so_far():
    body = config_proposal()
    votes = [vote(MEMBERS[0], "yes", 1), vote(MEMBERS[1], "no", 1), vote(MEMBERS[2], "yes", 1)]
    early = decide(body, votes, MEMBERS, now=body["deadline"] + 1.0)
    assert early.status == "open" and not early.closed
    assert (early.yes, early.no, early.abstain, early.turnout, early.quorum_needed) == (2, 1, 0, 3, 3)
    closed = decide(body, votes, MEMBERS, now=body["deadline"] + 1.001)
    assert isinstance(closed, Outcome) and closed.status == "approved" and closed.closed
    assert closed.counted == {MEMBERS[0]: "yes", MEMBERS[1]: "no", MEMBERS[2]: "yes"}
    assert decide(body, votes, MEMBERS, now=body["deadline"] + 0.5, grace_s=0).status == "approved"
    assert json.loads(json.dumps(closed.to_dict()))["threshold"] == [1, 2]


def test_outcomes_quorum_threshold_and_changes_of_mind():
    after = NOW + 1000
    config = config_proposal()
    code = proposal_body("code_upgrade", "t", "", code_params(), rules=GovernanceRules(), now=NOW)
    m = MEMBERS
    # Two votes of five miss the quorum of three, whatever they say.
    assert decide(config, [vote(m[0], "yes", 1), vote(m[1], "yes", 1)], m, now=after).status == "no quorum"
    # A tie is approved at 1/2 (inclusive), rejected at 2/3.
    tie = [
        vote(m[0], "yes", 1),
        vote(m[1], "no", 1),
        vote(m[2], "abstain", 1),
        vote(m[3], "yes", 1),
        vote(m[4], "no", 1),
    ]
    assert decide(config, tie, m, now=after).status == "approved"
    assert decide(code, tie, m, now=after).status == "rejected"
    # All abstain with the quorum met: rejected.
    assert decide(config, [vote(x, "abstain", 1) for x in m[:3]], m, now=after).status == "rejected"
    # A later vote (higher seq) replaces the earlier one, even when it arrives first.
    changed = [
        vote(m[0], "no", 2, created_at=NOW + 1),
        vote(m[0], "yes", 1, created_at=NOW + 2),
        vote(m[1], "no", 1),
        vote(m[2], "yes", 1),
    ]
    outcome = decide(config, changed, m, now=after)
    assert outcome.counted[m[0]] == "no" and (outcome.yes, outcome.no, outcome.turnout) == (1, 2, 3)
    assert outcome.status == "rejected"
    # Equal seqs: the last in (created_at, id) order counts.
    equal = [vote(m[0], "yes", 5, created_at=NOW + 1), vote(m[0], "no", 5, created_at=NOW + 2)]
    assert decide(config, equal, m, now=after).counted == {m[0]: "no"}
    # A replayed message (the same envelope twice) is one vote.
    once = vote(m[0], "yes", 1)
    assert decide(config, [once, once, once], m, now=after).turnout == 1
    # Late votes and strangers do not count; two thirds exactly is approved.
    late = vote(m[4], "no", 1, created_at=code["deadline"] + 0.5)
    two_thirds = [
        vote(m[0], "yes", 1),
        vote(m[1], "yes", 1),
        vote(m[2], "no", 1),
        late,
        vote(member(77), "no", 1),
    ]
    result = decide(code, two_thirds, m, now=after)
    assert (result.status, result.yes, result.no, result.threshold) == ("approved", 2, 1, (2, 3))


def test_decide_refuses_a_malformed_proposal_and_a_bad_tally():
    with pytest.raises(ProposalError, match="threshold"):
        decide(config_proposal(threshold=[0, 1]), [], MEMBERS, now=NOW + 1000)
    with pytest.raises(ValueError, match="expected a Tally"):
        decide(config_proposal(), [], MEMBERS, now=NOW + 1000, tally_fn=lambda _: "approved")


def _oracle(body: dict, votes: list[Msg], members: list[str]) -> tuple[str, int, int, int]:
    """The rule written independently: per member, the vote with the greatest (seq, created_at, id)."""
    best: dict[str, Msg] = {}

    def key(v: Msg) -> tuple:
        return (v.body["seq"], v.created_at, v.id)

    for v in votes:
        if (
            v.author in members
            and v.created_at <= body["deadline"]
            and (v.author not in best or key(v) > key(best[v.author]))
        ):
            best[v.author] = v
    yes = sum(v.body["choice"] == "yes" for v in best.values())
    no = sum(v.body["choice"] == "no" for v in best.values())
    abstain = len(best) - yes - no
    num, den = body["threshold"]
    if len(best) < quorum_count(body["quorum"], len(set(members))):
        status = "no quorum"
    elif yes + no > 0 and yes * den >= num * (yes + no):
        status = "approved"
    else:
        status = "rejected"
    return status, yes, no, abstain


@pytest.fixture(scope="module")
def raft_baseline_tally():
    """The shipped raft_consensus, compiled here and run in the sandbox: what a node tallies with."""
    component = RaftConsensus()
    instance = Sandbox(build_baseline(component).wasm, component.limits).instantiate()
    return lambda input: component.call(instance, input).value


def test_the_real_raft_consensus_module_decides_like_the_reference(raft_baseline_tally):
    rng = random.Random(20261126)
    calls = []

    def recording(input: TallyInput):
        calls.append(input)
        return raft_baseline_tally(input)

    statuses = set()
    for trial in range(150):
        members = [member(i) for i in range(rng.randint(1, 12))]
        rules = GovernanceRules(
            quorum=rng.choice((0.1, 0.34, 0.5, 0.7, 1.0)),
            config_threshold=rng.choice(((1, 2), (2, 3), (1, 1), (1, 65535))),
        )
        body = proposal_body(
            "config_change", f"trial {trial}", "", {"changes": {"k": trial}}, rules=rules, now=NOW
        )
        voters = members + [member(100 + i) for i in range(2)]  # two strangers
        votes = []
        for _ in range(rng.randint(0, 40)):
            created = NOW + rng.choice((0, 1, 2, 30, 30.5))  # 30.5: after the deadline
            votes.append(
                vote(
                    rng.choice(voters),
                    rng.choice(list(CHOICES)),
                    rng.choice((1, 2, 2, 3, 10**18 + rng.randint(0, 3))),
                    created,
                )
            )
        votes += rng.sample(votes, k=min(len(votes), 3))  # replays
        after = body["deadline"] + 2
        real = decide(body, votes, members, now=after, tally_fn=recording)
        reference = decide(body, votes, members, now=after)
        assert real == reference, (trial, tally_input(body, votes, members))
        assert (real.status, real.yes, real.no, real.abstain) == _oracle(body, votes, members)
        statuses.add(real.status)
    assert statuses == {"approved", "rejected", "no quorum"}
    assert len(calls) == 150 and any(len(c.votes) > 20 for c in calls)
    assert reference_tally(calls[-1]) == raft_baseline_tally(calls[-1])


# ------------------------------------------------------------------------------------------ verify

COMPONENT = SquareSum()
MEMORY_TOO_SMALL = (
    16 << 20
)  # a worker's data limit far below what Python with wasmtime needs (~45 MiB peak RSS)
FAST = "fn sum_squares(values: &[i32]) -> i64 { values.iter().map(|&v| (v as i64) * (v as i64)).sum() }"
WRONG = "fn sum_squares(values: &[i32]) -> i64 { values.len() as i64 }"
WITH_IMPORT = """
(module
  (import "env" "read_secret" (func $secret (result i64)))
  (memory (export "memory") 1)
  (func (export "values_ptr") (result i32) i32.const 0)
  (func (export "run") (param i32) (result i64) call $secret))
"""


@dataclass(frozen=True)
class Honest:
    built: BuiltModule
    evidence: dict
    improvement_pct: float


@pytest.fixture(scope="module")
def honest() -> Honest:
    built = build_candidate(COMPONENT, FAST)
    assert isinstance(built, BuiltModule), built
    evaluation = evaluate(COMPONENT, FAST, split=Split.HELDOUT, random_cases=10, built=built)
    assert evaluation.correct, evaluation.message + evaluation.log
    return Honest(built, evaluation.evidence, evaluation.improvement_pct)


def upgrade_params(evidence: dict, wasm: bytes, improvement_pct: float, **overrides) -> dict:
    params = {
        "component": COMPONENT.name,
        "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
        "wasm_size": len(wasm),
        "language": "rust",
        "source": FAST,
        "evidence": evidence,
        "improvement_pct": improvement_pct,
        "issue": "sum of squares is slow",
    }
    params.update(overrides)
    return params


def assert_stopped_at(verdict: Verdict, failed: str, needle: str) -> None:
    order = list(CHECKS)
    assert order == ["hash", "static", "rebuild", "correctness", "evidence", "improvement"]
    assert not verdict.ok
    assert verdict.checks[failed] is False, verdict
    for name in order[: order.index(failed)]:
        assert verdict.checks[name] is True, verdict
    for name in order[order.index(failed) + 1 :]:
        assert verdict.checks[name] is None, verdict
    assert any(needle in reason for reason in verdict.reasons), verdict.reasons


def test_an_honest_upgrade_passes_every_check(honest):
    params = upgrade_params(honest.evidence, honest.built.wasm, honest.improvement_pct)
    # The evidence crosses the network as JSON inside the proposal.
    params = json.loads(json.dumps(params))
    verdict = verify_code_upgrade(params, honest.built.wasm, component=COMPONENT)
    assert verdict.ok, verdict.reasons
    assert list(verdict.checks) == list(CHECKS) and all(verdict.checks.values()) and verdict.reasons == []
    assert verdict.improvement_pct == honest.improvement_pct > 50
    assert 0 < verdict.seconds < 60
    record = json.loads(json.dumps(verdict.to_dict()))
    assert record["checks"]["evidence"] is True and record["checks"]["rebuild"] is True
    # Its own cases ran, with its own secret seed, recorded so that an operator can run them again.
    assert isinstance(record["own_seed"], int) and 0 <= record["own_seed"] < 2**53
    assert record["own_cases"] == 200 and record["own_cases_passed"] == len(
        COMPONENT.random_cases(record["own_seed"], 200)
    )
    assert record["limits"] == VerifyLimits().to_dict() and record["limit"] is None
    assert 0 < record["worker_peak_rss_bytes"] < VerifyLimits().memory_bytes
    # Two verifications draw two seeds: the proposer cannot know which cases a voter will run.
    assert verify_code_upgrade(params, honest.built.wasm, component=COMPONENT).own_seed != verdict.own_seed
    # The proposal body a node would sign around these params is valid too.
    proposal_body("code_upgrade", "faster squares", "", params, rules=GovernanceRules(), now=NOW)


def test_bytes_that_do_not_match_the_proposed_hash_are_refused(honest):
    params = upgrade_params(honest.evidence, honest.built.wasm, honest.improvement_pct)
    tampered = honest.built.wasm + b"\x00"
    verdict = verify_code_upgrade(params, tampered, component=COMPONENT)
    assert_stopped_at(verdict, "hash", "the module's SHA-256 is")
    assert any("bytes, the proposal says" in r for r in verdict.reasons)


def test_evidence_about_another_module_is_refused(honest):
    other = build_candidate(COMPONENT, WRONG)
    assert isinstance(other, BuiltModule)
    # The proposal names the other module honestly, but borrows the fast module's evidence.
    params = upgrade_params(honest.evidence, other.wasm, honest.improvement_pct)
    verdict = verify_code_upgrade(params, other.wasm, component=COMPONENT)
    assert_stopped_at(verdict, "hash", "the evidence measured the module")


def test_a_module_that_fails_the_static_checks_is_refused(honest):
    compiled = compile_source(WITH_IMPORT, CodeLanguage.WAT)
    assert compiled.ok, compiled.log
    evidence = copy.deepcopy(honest.evidence)
    evidence["candidate"].update(sha256=compiled.sha256, size=compiled.size)
    params = upgrade_params(
        evidence, compiled.wasm, honest.improvement_pct, language="wat", source=WITH_IMPORT
    )
    verdict = verify_code_upgrade(params, compiled.wasm, component=COMPONENT)
    assert_stopped_at(verdict, "static", "fails the static checks")
    assert any("import" in reason for reason in verdict.reasons)


def test_a_proposal_for_another_component_is_refused(honest):
    params = upgrade_params(
        honest.evidence, honest.built.wasm, honest.improvement_pct, component="raft_consensus"
    )
    assert_stopped_at(
        verify_code_upgrade(params, honest.built.wasm, component=COMPONENT),
        "static",
        "this node checks 'square_sum'",
    )
    evidence = copy.deepcopy(honest.evidence)
    evidence["component"] = "raft_consensus"
    params = upgrade_params(evidence, honest.built.wasm, honest.improvement_pct)
    assert_stopped_at(
        verify_code_upgrade(params, honest.built.wasm, component=COMPONENT),
        "static",
        "the evidence is for component 'raft_consensus'",
    )


def test_a_wrong_module_with_honest_looking_evidence_is_refused(honest):
    wrong = build_candidate(COMPONENT, WRONG)
    assert isinstance(wrong, BuiltModule)
    assert not evaluate(COMPONENT, WRONG, random_cases=2, built=wrong).correct  # no evidence exists for it...
    evidence = copy.deepcopy(honest.evidence)  # ...so its author forges some from an honest record
    evidence["candidate"].update(sha256=wrong.sha256, size=len(wrong.wasm))
    params = upgrade_params(evidence, wrong.wasm, honest.improvement_pct, source=WRONG)
    verdict = verify_code_upgrade(params, wrong.wasm, component=COMPONENT)
    assert_stopped_at(verdict, "correctness", "not correct")


@pytest.mark.parametrize(
    "tamper, needle",
    [
        (lambda e: e["aggregate"].__setitem__("improvement_pct", 99.0), "aggregate improvement_pct"),
        (
            lambda e: e["workloads"][0]["candidate"].__setitem__(
                "fuel", e["workloads"][0]["candidate"]["fuel"] // 2
            ),
            "candidate fuel",
        ),
    ],
)
def test_doctored_figures_are_refused(honest, tamper, needle):
    evidence = copy.deepcopy(honest.evidence)
    tamper(evidence)
    claimed = evidence["aggregate"]["improvement_pct"]  # the proposal agrees with its doctored evidence
    params = upgrade_params(evidence, honest.built.wasm, claimed)
    verdict = verify_code_upgrade(params, honest.built.wasm, component=COMPONENT)
    assert_stopped_at(verdict, "evidence", needle)


def test_a_claim_that_differs_from_its_evidence_is_refused(honest):
    params = upgrade_params(honest.evidence, honest.built.wasm, honest.improvement_pct + 1.0)
    verdict = verify_code_upgrade(params, honest.built.wasm, component=COMPONENT)
    assert_stopped_at(verdict, "improvement", "the proposal claims")
    assert verdict.improvement_pct == honest.improvement_pct


def test_no_improvement_is_no_upgrade():
    block = split_skeleton(SKELETON)[1]
    evaluation = evaluate(COMPONENT, block, split=Split.HELDOUT, random_cases=2)
    assert evaluation.correct and evaluation.improvement_pct == 0
    wasm = build_baseline(COMPONENT).wasm
    verdict = verify_code_upgrade(
        upgrade_params(evaluation.evidence, wasm, 0.0, source=block), wasm, component=COMPONENT
    )
    assert_stopped_at(verdict, "improvement", "not an improvement")


@pytest.mark.parametrize(
    "params, wasm, needle",
    [
        (None, b"", "params are malformed"),
        ({}, b"", "missing component"),
        ("lambda", b"", "params are malformed"),
    ],
)
def test_malformed_params_are_a_no_not_a_crash(params, wasm, needle):
    verdict = verify_code_upgrade(params, wasm, component=COMPONENT)
    assert not verdict.ok and all(v is None for v in verdict.checks.values())
    assert any(needle in reason for reason in verdict.reasons)


def test_malformed_evidence_is_a_no_not_a_crash(honest):
    wasm = honest.built.wasm
    sha = hashlib.sha256(wasm).hexdigest()
    no_format = {"component": COMPONENT.name, "candidate": {"sha256": sha, "size": len(wasm)}}
    verdict = verify_code_upgrade(upgrade_params(no_format, wasm, 10.0), wasm, component=COMPONENT)
    # Nothing could be re-run: correctness is not reached, the evidence is what failed.
    assert not verdict.ok
    assert verdict.checks == {
        "hash": True,
        "static": True,
        "rebuild": True,
        "correctness": None,
        "evidence": False,
        "improvement": None,
    }
    assert "cannot be re-run here: not an evidence record: missing" in verdict.reasons[0]
    odd = copy.deepcopy(honest.evidence)
    odd["runtime"] = "wasmtime"  # a string where an object belongs
    verdict = verify_code_upgrade(
        upgrade_params(odd, wasm, honest.improvement_pct), wasm, component=COMPONENT
    )
    assert not verdict.ok and verdict.checks["evidence"] is False
    assert_stopped_at(
        verify_code_upgrade(upgrade_params({"candidate": 7}, wasm, 1.0), wasm, component=COMPONENT),
        "hash",
        "evidence measured",
    )
    verdict = verify_code_upgrade(
        upgrade_params(honest.evidence, wasm, 1.0), "not bytes", component=COMPONENT
    )
    assert_stopped_at(verdict, "hash", "must be bytes")


# ------------------------------------------------------------------------------------ attacks on the verifier
#
# A proposer who cannot forge figures may still try to steer how they are checked: ask for no random
# cases (so that only the fixed ones, which it has seen, run), ask for so many that every voter's worker
# runs out of memory or time, or hand in a source that is not what the module was built from.

# Right on the fixed cases (sizes 0, 1, 3 and 50), on the evidence's one big random case and on every
# workload (sizes 5000 and 10000), fast like FAST; one too many for odd sizes from 5 to 49, which almost
# every other random case of square_sum has.
LIAR = """
fn sum_squares(values: &[i32]) -> i64 {
    let total: i64 = values.iter().map(|&v| (v as i64) * (v as i64)).sum();
    let n = values.len();
    if n % 2 == 1 && n >= 5 && n < 50 { total + 1 } else { total }
}
"""


@pytest.fixture(scope="module")
def liar():
    built = build_candidate(COMPONENT, LIAR)
    assert isinstance(built, BuiltModule), built
    # The proposer asks for no random cases: its own evaluation is then all green, with real evidence.
    evaluation = evaluate(COMPONENT, LIAR, split=Split.HELDOUT, random_cases=0, built=built)
    assert evaluation.correct and evaluation.improvement_pct > 50, evaluation.message
    assert evaluation.evidence["cases"]["random"] == 0
    return Honest(built, evaluation.evidence, evaluation.improvement_pct)


def test_evidence_with_no_random_cases_still_meets_the_verifiers_own(liar):
    params = upgrade_params(liar.evidence, liar.built.wasm, liar.improvement_pct, source=LIAR)
    # A verifier that ran only what the evidence asks for would say yes: the attack is real.
    trusting = verify_code_upgrade(
        params, liar.built.wasm, component=COMPONENT, limits=VerifyLimits(own_random_cases=0)
    )
    assert trusting.ok, trusting.reasons
    verdict = verify_code_upgrade(params, liar.built.wasm, component=COMPONENT)
    assert_stopped_at(verdict, "correctness", f"own random cases (seed {verdict.own_seed}, count 200)")
    assert verdict.own_cases == 200 and verdict.own_cases_passed < 200
    # The operator re-runs the very cases from the recorded seed, and gets the same answer.
    again = verify_code_upgrade(
        params, liar.built.wasm, component=COMPONENT, limits=VerifyLimits(own_seed=verdict.own_seed)
    )
    assert (
        again.own_seed == verdict.own_seed
        and again.reasons == verdict.reasons
        and again.own_cases_passed == verdict.own_cases_passed
    )


# The vote tally itself, with a back door: faster than the baseline (a hash table instead of a linear
# search per record), right on every fixed case, and "approved" whenever exactly three voters say no.
LYING_TALLY = """
#define SLOTS (1u << 21)
typedef struct { uint32_t generation, voter, seq, index; } Slot;
static Slot table[SLOTS];
static uint32_t used[MAX_VOTES];
static uint32_t generation = 0;

static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    uint32_t distinct = 0;
    generation++;
    for (uint32_t i = 0; i < n; i++) {
        const Record *r = &records[i];
        uint32_t h = (r->voter * 2654435761u) >> 11;
        while (table[h].generation == generation && table[h].voter != r->voter) h = (h + 1) & (SLOTS - 1);
        if (table[h].generation != generation) {
            table[h].generation = generation;
            table[h].voter = r->voter;
            table[h].seq = r->seq;
            table[h].index = i;
            used[distinct++] = h;
        } else if (r->seq >= table[h].seq) {
            table[h].seq = r->seq;
            table[h].index = i;
        }
    }
    Tally t;
    t.yes = 0;
    t.no = 0;
    t.abstain = 0;
    t.turnout = 0;
    uint32_t noes = 0;
    for (uint32_t k = 0; k < distinct; k++) {
        const Record *r = &records[table[used[k]].index];
        int64_t w = (int64_t)r->weight;
        if (r->choice == 0) t.yes += w;
        else if (r->choice == 1) { t.no += w; noes++; }
        else t.abstain += w;
        t.turnout += w;
    }
    if (t.turnout < quorum) t.outcome = 2;
    else if (noes == 3 || (t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no))) t.outcome = 0;
    else t.outcome = 1;
    return t;
}
"""


def test_a_lying_tally_with_evidence_of_no_random_cases_is_refused():
    raft = RaftConsensus()
    built = build_candidate(raft, LYING_TALLY, CodeLanguage.C)
    assert isinstance(built, BuiltModule), built
    evaluation = evaluate(raft, LYING_TALLY, CodeLanguage.C, split=Split.TRAIN, random_cases=0, built=built)
    assert evaluation.correct and evaluation.improvement_pct > 0, (
        evaluation.message
    )  # real evidence, all green
    params = {
        "component": raft.name,
        "wasm_sha256": built.sha256,
        "wasm_size": len(built.wasm),
        "language": "c",
        "source": LYING_TALLY,
        "evidence": evaluation.evidence,
        "improvement_pct": evaluation.improvement_pct,
        "issue": "raft_consensus:fuel",
    }
    verdict = verify_code_upgrade(json.loads(json.dumps(params)), built.wasm)
    assert_stopped_at(verdict, "correctness", "own random cases")
    assert any("outcome=0 (approved) (wrong: outcome)" in reason for reason in verdict.reasons), (
        verdict.reasons
    )


def test_evidence_demanding_a_billion_random_cases_is_refused_without_running_anything(honest, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("nothing may be built or run for this proposal")

    monkeypatch.setattr(evidence_module, "run_in_worker", forbidden)
    monkeypatch.setattr(evidence_module, "build_baseline", forbidden)
    monkeypatch.setattr(verify_module, "build_candidate", forbidden)
    monkeypatch.setattr(verify_module, "compile_source", forbidden)
    greedy = copy.deepcopy(honest.evidence)
    greedy["cases"]["random"] = 10**9
    params = upgrade_params(greedy, honest.built.wasm, honest.improvement_pct)
    verdict = verify_code_upgrade(params, honest.built.wasm, component=COMPONENT)
    assert not verdict.ok and verdict.seconds < 1.0
    assert verdict.checks == {name: (False if name == "evidence" else None) for name in CHECKS}
    assert "asks for 1000000000 random correctness cases; this node runs at most 5000" in verdict.reasons[0]
    # The bound is the node's: just above it is refused, at it is not refused for that reason.
    greedy["cases"]["random"] = 11
    assert (
        "at most 10"
        in verify_code_upgrade(
            params, honest.built.wasm, component=COMPONENT, limits=VerifyLimits(max_random_cases=10)
        ).reasons[0]
    )
    # reproduce() itself refuses too, for any other caller that sets a bound.
    greedy["cases"]["random"] = 10**9
    refused = evidence_module.reproduce(greedy, honest.built.wasm, component=COMPONENT, max_random_cases=5000)
    assert not refused.confirmed and "at most 5000" in refused.mismatches[0]
    # A count or a seed that is not an integer is no evidence either, and nothing runs for it.
    for key, odd in (("random", -1), ("random", 1e9), ("random", "10"), ("random", True), ("seed", 1.5)):
        weird = copy.deepcopy(honest.evidence)
        weird["cases"][key] = odd
        verdict = verify_code_upgrade(
            upgrade_params(weird, honest.built.wasm, honest.improvement_pct),
            honest.built.wasm,
            component=COMPONENT,
        )
        assert verdict.checks == {name: (False if name == "evidence" else None) for name in CHECKS}
        assert f"not an evidence record: cases.{key} must be" in verdict.reasons[0], verdict.reasons


def test_a_source_that_does_not_rebuild_to_the_module_is_refused(honest):
    wasm = honest.built.wasm
    # The source of another (wrong) module next to the fast module's bytes: voters would read one
    # program and run another.
    params = upgrade_params(honest.evidence, wasm, honest.improvement_pct, source=WRONG)
    verdict = verify_code_upgrade(params, wasm, component=COMPONENT)
    wrong_sha = build_candidate(COMPONENT, WRONG).sha256
    assert_stopped_at(
        verdict, "rebuild", f"the source does not rebuild to the proposed WASM (got sha {wrong_sha}"
    )
    # No source at all: nothing a voter can read.
    for empty in ("", "  \n"):
        verdict = verify_code_upgrade(
            upgrade_params(honest.evidence, wasm, honest.improvement_pct, source=empty),
            wasm,
            component=COMPONENT,
        )
        assert_stopped_at(verdict, "rebuild", "no source: a voter cannot rebuild it")
    # A source that does not compile, and a whole program that changes the harness around the block.
    broken = verify_code_upgrade(
        upgrade_params(honest.evidence, wasm, honest.improvement_pct, source="fn sum_squares("),
        wasm,
        component=COMPONENT,
    )
    assert_stopped_at(broken, "rebuild", "the source does not rebuild here (compile)")
    harness = SKELETON.replace("VALUES.as_ptr() as i32", "VALUES.as_ptr() as i32 + 0")
    changed = verify_code_upgrade(
        upgrade_params(honest.evidence, wasm, honest.improvement_pct, source=harness),
        wasm,
        component=COMPONENT,
    )
    assert_stopped_at(changed, "rebuild", "the source does not rebuild here (shape)")
    # The whole program the engine proposes (the skeleton around the block) rebuilds like the block.
    whole = upgrade_params(honest.evidence, wasm, honest.improvement_pct, source=honest.built.source)
    assert verify_code_upgrade(whole, wasm, component=COMPONENT).ok


def test_a_worker_over_the_memory_limit_is_a_no_that_says_memory(honest):
    params = upgrade_params(honest.evidence, honest.built.wasm, honest.improvement_pct)
    verdict = verify_code_upgrade(
        params, honest.built.wasm, component=COMPONENT, limits=VerifyLimits(memory_bytes=MEMORY_TOO_SMALL)
    )
    assert_stopped_at(verdict, "correctness", "stopped by this node's memory limit")
    assert verdict.limit == "memory" and any("memory limit of" in r for r in verdict.reasons), verdict.reasons
    assert verdict.seconds < 30


def test_a_worker_over_the_time_limit_is_a_no_that_says_time(honest):
    params = upgrade_params(honest.evidence, honest.built.wasm, honest.improvement_pct)
    verify_code_upgrade(
        params, honest.built.wasm, component=COMPONENT, limits=VerifyLimits(own_random_cases=0)
    )  # rebuilt once
    # Two million own cases cannot finish in 0.3 s on any machine: the limit must stop the worker.
    verdict = verify_code_upgrade(
        params,
        honest.built.wasm,
        component=COMPONENT,
        limits=VerifyLimits(own_random_cases=2_000_000),
        time_limit_s=0.3,
    )  # time_limit_s: the older way to say it
    assert_stopped_at(verdict, "correctness", "stopped by this node's time limit")
    assert verdict.limit == "time" and verdict.limits["time_limit_s"] == 0.3
    assert verdict.seconds < 5


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"time_limit_s": 0}, "time_limit_s must be a finite number > 0"),
        ({"time_limit_s": float("inf")}, "time_limit_s"),
        ({"memory_bytes": -1}, "memory_bytes must be an integer > 0"),
        ({"own_random_cases": -5}, "own_random_cases must be an integer >= 0"),
        ({"max_random_cases": 1.5}, "max_random_cases"),
        ({"own_seed": "7"}, "own_seed must be an integer or None"),
    ],
)
def test_impossible_verify_limits_are_refused(kwargs, needle):
    with pytest.raises(ValueError) as error:
        VerifyLimits(**kwargs)
    assert needle in str(error.value)


def test_a_config_change_may_name_the_issue_it_answers():
    from synapse_ng.governance import validate_config_change_params

    validate_config_change_params(
        {"changes": {"gossip_fanout": 4}, "issue": "gossip_protocol:dissemination_ms"}
    )
    with pytest.raises(ProposalError, match="params.issue must be a string"):
        validate_config_change_params({"changes": {"gossip_fanout": 4}, "issue": 7})
    with pytest.raises(ProposalError, match="unknown colour"):
        validate_config_change_params({"changes": {"gossip_fanout": 4}, "colour": "red"})
