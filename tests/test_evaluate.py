"""Evaluation and evidence, exercised on a tiny exact component (tests/square_component.py) so that the
machinery is tested apart from the real components: real rustc, real wasmtime, a real worker process."""

from __future__ import annotations

import copy
import time

import pytest

from square_component import SKELETON, SquareSum
from synapse_ng.components import CandidateShapeError, Split, assemble, get_component, split_skeleton
from synapse_ng.components.base import EVOLVE_END, EVOLVE_START, Objective
from synapse_ng.errors import UsageError
from synapse_ng.evolution import build_candidate, evaluate, reproduce
from synapse_ng.evolution.build import BuiltModule
from synapse_ng.outcome import Outcome

COMPONENT = SquareSum()
FAST = """
fn sum_squares(values: &[i32]) -> i64 {
    values.iter().map(|&v| (v as i64) * (v as i64)).sum()
}
"""
OFF_BY_ONE = (
    "fn sum_squares(values: &[i32]) -> i64 { values.iter().map(|&v| (v as i64) * (v as i64) + 1).sum() }"
)
WRONG_WHEN_LARGE = """
fn sum_squares(values: &[i32]) -> i64 {
    let total: i64 = values.iter().map(|&v| (v as i64) * (v as i64)).sum();
    if values.len() > 1000 { total - 1 } else { total }
}
"""
BURNS_FUEL = """
fn sum_squares(values: &[i32]) -> i64 {
    let mut total: i64 = 0;
    for &v in values {
        let mut k: i64 = 0;
        while k < 2000 * (v as i64) * (v as i64) { k = unsafe { core::ptr::read_volatile(&k) } + 1; }
        total += (v as i64) * (v as i64);
    }
    total
}
"""


@pytest.fixture(scope="module")
def fast_evaluation():
    return evaluate(COMPONENT, FAST, split=Split.HELDOUT, random_cases=10)


def test_a_faster_correct_candidate_is_measured_against_the_baseline(fast_evaluation):
    evaluation = fast_evaluation
    assert evaluation.status == Outcome.CORRECT, evaluation.message + evaluation.log
    assert evaluation.cases_passed == evaluation.cases_total == 4 + 11
    assert [w["id"] for w in evaluation.workloads] == ["heldout-101", "heldout-102"]
    for workload in evaluation.workloads:
        assert workload["candidate"]["fuel"] < workload["baseline"]["fuel"]
    assert evaluation.improvement_pct > 50
    evidence = evaluation.evidence
    assert evidence["candidate"]["sha256"] == evaluation.candidate["sha256"]
    assert evidence["runtime"]["wasmtime"] == "50.0.1"
    assert evidence["cases"]["seed"] and evidence["cases"]["total"] == 15
    assert all("seed" in w and "origin" in w for w in evidence["workloads"])


def test_the_baseline_against_itself_improves_nothing():
    evaluation = evaluate(COMPONENT, split_skeleton(SKELETON)[1], random_cases=3)
    assert evaluation.status == Outcome.CORRECT
    assert evaluation.improvement_pct == 0
    assert evaluation.candidate["sha256"] == evaluation.baseline["sha256"]


def test_a_wrong_candidate_shows_its_first_failing_case():
    evaluation = evaluate(COMPONENT, OFF_BY_ONE, random_cases=3)
    assert evaluation.status == Outcome.INCORRECT
    failure = evaluation.first_failure
    assert failure["case"] == "one"  # "empty" passes (0 == 0); the cascade stops at the next
    assert failure["input"] == "[7]" and failure["expected"] == "49" and failure["got"] == "50"
    assert evaluation.evidence is None and evaluation.aggregate is None


def test_right_on_small_cases_wrong_on_large_is_caught():
    evaluation = evaluate(COMPONENT, WRONG_WHEN_LARGE, random_cases=5)
    assert evaluation.status == Outcome.INCORRECT
    assert evaluation.first_failure["case"] == "random-5"  # the big one
    assert evaluation.cases_passed == 4 + 5


def test_correct_but_out_of_fuel_is_incorrect():
    evaluation = evaluate(COMPONENT, BURNS_FUEL, random_cases=2)
    assert evaluation.status == Outcome.INCORRECT
    assert "out_of_fuel" in evaluation.message


def test_the_evaluation_time_limit_kills_the_worker():
    started = time.monotonic()
    evaluation = evaluate(COMPONENT, BURNS_FUEL.replace("2000 *", "20 *"), random_cases=20000, time_limit_s=3)
    assert evaluation.status == Outcome.TIME_LIMIT
    assert time.monotonic() - started < 30


def test_edits_outside_the_evolve_block_are_rejected():
    program = SKELETON.replace("[0; 20000]", "[1; 20000]")
    evaluation = evaluate(COMPONENT, program.replace(split_skeleton(SKELETON)[1], FAST))
    assert evaluation.status == Outcome.REJECTED and evaluation.stage == "shape"
    assert "changes code before the EVOLVE block" in evaluation.message


def test_a_whole_program_that_keeps_the_harness_is_accepted():
    head, _, tail = split_skeleton(SKELETON)
    built = build_candidate(COMPONENT, "  " + head + FAST + tail + "\n\n")
    assert isinstance(built, BuiltModule)


def test_policy_and_compile_failures_stop_before_anything_runs():
    leak = evaluate(
        COMPONENT, 'fn sum_squares(v: &[i32]) -> i64 { include_str!("/etc/passwd").len() as i64 }'
    )
    assert leak.status == Outcome.REJECTED and leak.stage == "policy" and "include-macro" in leak.message
    broken = evaluate(COMPONENT, "fn sum_squares(v: &[i32]) -> i64 { v }")
    assert broken.status == Outcome.COMPILE_FAILED and "mismatched types" in broken.log


def test_assemble_accepts_a_block_and_refuses_two_blocks():
    program = assemble(SKELETON, FAST)
    assert FAST.strip() in program and program.count(EVOLVE_START) == 1
    with pytest.raises(CandidateShapeError, match="exactly one"):
        assemble(SKELETON, f"// {EVOLVE_START}\n// {EVOLVE_START}\n// {EVOLVE_END}\n")


def test_objective_arithmetic():
    fuel = Objective("fuel", "min", "sum", "")
    assert fuel.improvement_pct(50, 200) == 75.0 and fuel.better(50, 200)
    quality = Objective("score", "max", "mean", "")
    assert quality.improvement_pct(110, 100) == pytest.approx(10.0) and not quality.better(90, 100)


def test_unknown_component_lists_the_known_ones():
    with pytest.raises(UsageError, match="known components"):
        get_component("no_such_component")


# ---------------------------------------------------------------------------------------- evidence


def test_reproduce_confirms_honest_evidence(fast_evaluation):
    wasm = build_candidate(COMPONENT, FAST).wasm
    result = reproduce(fast_evaluation.evidence, wasm, component=COMPONENT)
    assert result.confirmed, result.mismatches


@pytest.mark.parametrize(
    "tamper, needle",
    [
        (
            lambda e: e["workloads"][0]["candidate"].__setitem__(
                "fuel", e["workloads"][0]["candidate"]["fuel"] - 1
            ),
            "candidate fuel",
        ),
        (
            lambda e: e["workloads"][1]["baseline"].__setitem__(
                "fuel", e["workloads"][1]["baseline"]["fuel"] + 1000
            ),
            "baseline fuel",
        ),
        (lambda e: e["aggregate"].__setitem__("improvement_pct", 99.0), "improvement_pct"),
        (lambda e: e["candidate"].__setitem__("sha256", "0" * 64), "candidate SHA-256"),
        (lambda e: e["baseline"].__setitem__("sha256", "1" * 64), "baseline built here"),
        (lambda e: e["workloads"].pop(), "workloads differ"),
        (lambda e: e["workloads"][0].__setitem__("seed", 7), "seed"),
        (lambda e: e["runtime"].__setitem__("wasmtime", "49.0.0"), "wasmtime"),
    ],
)
def test_reproduce_refutes_tampered_evidence(fast_evaluation, tamper, needle):
    evidence = copy.deepcopy(fast_evaluation.evidence)
    tamper(evidence)
    wasm = build_candidate(COMPONENT, FAST).wasm
    result = reproduce(evidence, wasm, component=COMPONENT)
    assert not result.confirmed
    assert any(needle in mismatch for mismatch in result.mismatches), result.mismatches


def test_reproduce_refutes_another_module(fast_evaluation):
    other = build_candidate(COMPONENT, OFF_BY_ONE).wasm
    result = reproduce(fast_evaluation.evidence, other, component=COMPONENT)
    assert not result.confirmed
    assert any("SHA-256" in m for m in result.mismatches)
    assert any("not correct" in m for m in result.mismatches)


def test_malformed_evidence_is_a_usage_error():
    with pytest.raises(UsageError, match="missing"):
        reproduce({"format": "synapse-ng/evidence/1"}, b"")
    with pytest.raises(UsageError, match="JSON object"):
        reproduce([], b"")
