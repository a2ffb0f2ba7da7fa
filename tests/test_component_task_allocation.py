"""task_allocation: online bin packing under the FunSearch protocol, with the real compilers and wasmtime.

Every distinct source is compiled once, all side by side (see `_compile_everything_at_once`). The held-out
figures are the published ones (FunSearch, Table 1): best fit 212.0 bins on OR3 (5.37 % over L1 = 201.2) and
2067.0 on Weibull 5k (3.98 % over L1 = 1987.8); first fit 5.74 % and 4.23 %.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from synapse_ng.components import (
    CandidateShapeError,
    CaseFailure,
    ComponentKind,
    Split,
    assemble,
    get_component,
    split_skeleton,
)
from synapse_ng.components.base import Workload
from synapse_ng.components.task_allocation.bounds import l1_bound, l2_bound
from synapse_ng.components.task_allocation.component import TaskAllocation
from synapse_ng.components.task_allocation.datasets import DATA_ENV, data_dir
from synapse_ng.components.task_allocation.protocol import (
    MAX_ITEMS,
    best_fit_priority,
    first_fit_priority,
    online_pack,
    validate_packing,
)
from synapse_ng.errors import UsageError
from synapse_ng.evolution import evaluate
from synapse_ng.models import CodeLanguage
from synapse_ng.outcome import Outcome
from synapse_ng.toolchain import CompileOptions, compile_source
from synapse_ng.wasm.inspect import inspect_wasm
from synapse_ng.wasm.sandbox import Sandbox, SandboxLimits

RUST, C, WAT = CodeLanguage.RUST, CodeLanguage.C, CodeLanguage.WAT
COMPONENT: TaskAllocation = get_component("task_allocation")

# WAT names reach the whole module, so a WAT block can name the harness's buffers: this one puts bin 0's
# remaining capacity back to a billion on every call and scores bin 0 best, so every item goes there.
WAT_TAMPER = """
(func $priority (param $item f64) (param $bins i32) (param $n i32) (param $scores i32) (param $scratch i32)
  (local $k i32)
  (f64.store (global.get $REMAINING) (f64.const 1e9))
  (loop $each_bin (if (i32.lt_s (local.get $k) (local.get $n)) (then
    (f64.store (i32.add (local.get $scores) (i32.shl (local.get $k) (i32.const 3)))
      (f64.neg (f64.convert_i32_s (local.get $k))))
    (local.set $k (i32.add (local.get $k) (i32.const 1)))
    (br $each_bin)))))
"""

_compiled: dict[tuple[CodeLanguage, str], bytes] = {}


def build(source: str, language: CodeLanguage = RUST) -> bytes:
    """Compile once per session; the module must pass the component's static policy."""
    key = (language, source)
    if key not in _compiled:
        result = compile_source(
            source, language, CompileOptions(exports=tuple(spec.name for spec in COMPONENT.exports))
        )
        assert result.ok, result.log
        report = inspect_wasm(result.wasm, COMPONENT.wasm_policy())
        assert report.ok, report.reasons
        _compiled[key] = result.wasm
    return _compiled[key]


def candidate(block: str, language: CodeLanguage = RUST) -> bytes:
    return build(assemble(COMPONENT.skeleton(language), block), language)


def baseline(language: CodeLanguage) -> bytes:
    return build(COMPONENT.skeleton(language), language)


@pytest.fixture(scope="module", autouse=True)
def _compile_everything_at_once():
    """The compilers are separate processes: build every module of this file side by side, once."""
    sources = [(COMPONENT.skeleton(language), language) for language in (RUST, C, WAT)]
    sources += [(assemble(COMPONENT.skeleton(language), block), language) for block, language in BLOCKS]
    sources += [(whole_program_cheat(), RUST), (tampering_program(), RUST)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda pair: build(*pair), sources))


def fresh(wasm: bytes):
    instance = Sandbox(wasm, COMPONENT.limits).instantiate()
    assert instance.startup.ok, instance.startup.trap
    return instance


def cascade(wasm: bytes, random_count: int = 40) -> None:
    """What the evaluator does for correctness: fixed cases, then random ones, on one fresh instance (the
    scale case after them, which costs as much as a large batch, has tests of its own)."""
    instance = fresh(wasm)
    for case in COMPONENT.fixed_cases() + COMPONENT.random_cases(0, random_count):
        output = COMPONENT.call(instance, case.input)
        COMPONENT.check_output(case.input, output.value)


def failure_of(wasm: bytes) -> str:
    with pytest.raises(CaseFailure) as caught:
        cascade(wasm)
    return str(caught.value)


def heldout(workload_id: str) -> Workload:
    return next(w for w in COMPONENT.workloads(Split.HELDOUT) if w.id == workload_id)


def without_wall(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key != "wall_s"}


# ---------------------------------------------------------------------------- candidate blocks

FIRST_FIT = """
fn priority(_item: f64, bins: &[f64]) -> Vec<f64> {
    (0..bins.len()).map(|k| -(k as f64)).collect()
}
"""

WORST_FIT_C = """
void priority(double item, const double *bins, int n, double *scores) {
    for (int k = 0; k < n; k++) scores[k] = bins[k] - item;
}
"""

NAN_SCORES = "fn priority(_item: f64, bins: &[f64]) -> Vec<f64> { vec![f64::NAN; bins.len()] }"

INFINITE_SCORE = """
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    bins.iter().map(|&r| if r == item { f64::INFINITY } else { -(r - item) }).collect()
}
"""

PANICS = """
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    let beyond = bins[bins.len()];
    vec![item + beyond * 0.0; bins.len()]
}
"""

WRONG_LENGTH = "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { vec![item; bins.len() + 1] }"

UNWRITTEN_C = (
    "void priority(double item, const double *bins, int n, double *scores) {"
    " (void)item; (void)bins; (void)n; (void)scores; }"
)

NEGATIVE_INFINITY_C = """
void priority(double item, const double *bins, int n, double *scores) {
    for (int k = 0; k < n; k++) scores[k] = -1.0 / (bins[k] - item);
}
"""

# Best fit, except that it tampers with the harness's buffers behind its back, chosen by the capacity
# (the largest remaining capacity offered: an unused bin is always among them). One module, many attacks.
# The harness keeps its buffers private, so this block only compiles in a harness edited to open them
# (see `tampering_program`): a module the evaluator can still be handed as raw wasm.
TAMPERING = """
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    let capacity = bins.iter().cloned().fold(0.0, f64::max) as i32;
    unsafe {
        if capacity == 1004 {
            harness::ASSIGNMENT[0] = -1; // drop item 0
        }
        if capacity == 1005 {
            harness::ASSIGNMENT[0] = 9999; // item 0 into a bin that does not exist
        }
        if capacity == 1006 {
            // each item a second time into the last bin offered: the module counts bins it never used
            let last = harness::FEASIBLE_BIN[bins.len() - 1] as usize;
            harness::REMAINING[last] -= item;
        }
        if capacity == 1007 {
            // move every item placed so far into bin 0
            for bin in harness::ASSIGNMENT.iter_mut() {
                if *bin > 0 {
                    *bin = 0;
                }
            }
        }
        if capacity == 1008 {
            for remaining in harness::REMAINING.iter_mut() {
                *remaining = 0.0; // wreck the bin state
            }
        }
    }
    bins.iter().map(|&r| -(r - item)).collect()
}
"""


def tampering_program() -> str:
    """The Rust skeleton with three harness buffers made public, and TAMPERING as its block."""
    opened = COMPONENT.skeleton(RUST)
    for name in ("ASSIGNMENT", "REMAINING", "FEASIBLE_BIN"):
        opened = opened.replace(f"    static mut {name}:", f"    pub static mut {name}:")
    assert opened.count("pub static mut") == 3
    head, _, tail = split_skeleton(opened)
    return head + TAMPERING.strip("\n") + "\n" + tail


# Quadratic extra work per item: nothing on the small cases, 25 million steps per item at 5,000 bins.
FUEL_HOG = """
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    let mut scores: Vec<f64> = bins.iter().map(|&r| -(r - item)).collect();
    for round in 0..bins.len() {
        let nudge = (round as f64) * 0.0;
        for score in scores.iter_mut() {
            *score += nudge;
        }
    }
    scores
}
"""

# The block a 20-minute search crowned on seed 3 (2026-12-05): the fullest bin is found again inside the
# map, once per bin, so a call costs the bins squared. Through the cases and the training sizes (1,000 items),
# out of fuel on Weibull 5k, where held-out measurement caught it after the search had spent its minutes.
FULLEST_PER_BIN = """
fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    const SMALL: f64 = 27.76;
    const FACTOR: f64 = 7.035;
    bins.iter().map(|&remaining| { let gap = remaining - item; let mut score = -gap;
        if gap > 0.0 && gap < SMALL { score -= FACTOR * gap; }
        if gap > SMALL * 1.62 { score += 18.54; }
        let fullest = bins.iter().cloned().fold(f64::MAX, f64::min);
        score += 1.0 / (1.0 + (remaining - fullest) / (fullest - SMALL * 1.62));
        score }).collect()
}
"""

BLOCKS = [
    (FIRST_FIT, RUST),
    (FULLEST_PER_BIN, RUST),
    (NAN_SCORES, RUST),
    (INFINITE_SCORE, RUST),
    (WRONG_LENGTH, RUST),
    (PANICS, RUST),
    (FUEL_HOG, RUST),
    (WORST_FIT_C, C),
    (UNWRITTEN_C, C),
    (NEGATIVE_INFINITY_C, C),
]


def whole_program_cheat() -> str:
    """The Rust skeleton with its harness edited: everything into bin 0, and "1 bin" reported."""
    skeleton = COMPONENT.skeleton(RUST)
    cheat = skeleton.replace(
        "    unsafe { pack_items(n_items, capacity) }",
        "    unsafe { pack_items(n_items, capacity); for j in 0..n_items as usize { ASSIGNMENT[j] = 0; } }\n"
        "    1",
    )
    assert cheat != skeleton
    return cheat


# ============================================================================ the contract


def test_the_component_is_registered_under_its_name_and_the_seed_names():
    for name in (
        "task_allocation",
        "auction_system",
        "task_manager",
        "task_scheduler",
        "bin_packing",
        " Task_Allocation ",
    ):
        assert get_component(name) is COMPONENT
    assert COMPONENT.kind is ComponentKind.HEURISTIC
    assert (COMPONENT.objective.metric, COMPONENT.objective.direction, COMPONENT.objective.aggregation) == (
        "bins",
        "min",
        "mean",
    )
    assert COMPONENT.languages == (RUST, C, WAT)
    assert [str(spec) for spec in COMPONENT.exports] == [
        "items_ptr:->i32",
        "assignment_ptr:->i32",
        "error_ptr:->i32",
        "pack:i32,i32->i32",
    ]
    assert COMPONENT.info()["objective"] == "min mean bins"


@pytest.mark.parametrize("language", [RUST, C, WAT])
def test_each_skeleton_has_one_block_holding_the_baseline(language):
    skeleton = COMPONENT.skeleton(language)
    _, block, tail = split_skeleton(skeleton)
    assert {
        RUST: "fn priority(item: f64, bins: &[f64]) -> Vec<f64>",
        C: "priority(double item",
        WAT: "(func $priority (param $item f64) (param $bins i32) (param $n i32) (param $scores i32)",
    }[language] in block
    assert "EVOLVE" not in block
    # The entry points are harness.
    assert 'export_name("pack")' in tail or "fn pack(" in tail or '(export "pack")' in tail
    assert "(memory" not in block and "(export" not in block and "export_name" not in block
    assert assemble(skeleton, COMPONENT.baseline_block(language)) == skeleton
    assert assemble(skeleton, skeleton) == skeleton
    with pytest.raises(UsageError, match="no assemblyscript skeleton"):
        COMPONENT.skeleton(CodeLanguage.ASSEMBLYSCRIPT)


def test_the_python_protocol_is_best_fit_and_first_fit_on_a_hand_checked_instance():
    # capacity 10, items 5 7 3 2: best fit puts the 3 into the 7's bin (tightest), first fit into the 5's.
    assert online_pack([5, 7, 3, 2], 10, best_fit_priority) == [0, 1, 1, 0]
    assert online_pack([5, 7, 3, 2], 10, first_fit_priority) == [0, 1, 0, 0]
    assert online_pack([], 10) == []
    assert COMPONENT.reference({"capacity": 1, "items": [1, 1, 1]}) == [0, 1, 2]


def test_cases_are_deterministic_valid_and_quick():
    fixed = COMPONENT.fixed_cases()
    assert fixed[0].input == {"capacity": 10, "items": []}
    ids = [case.id for case in fixed]
    assert len(ids) == len(set(ids))
    assert [c.input for c in COMPONENT.random_cases(3, 20)] == [
        c.input for c in COMPONENT.random_cases(3, 20)
    ]
    assert [c.input for c in COMPONENT.random_cases(3, 20)] != [
        c.input for c in COMPONENT.random_cases(4, 20)
    ]
    shapes = {case.id.rsplit("-", 1)[1] for case in COMPONENT.random_cases(0, 8)}
    assert shapes == {"or", "weibull", "small", "wide"}
    for case in fixed + COMPONENT.random_cases(0, 40):
        items, capacity = case.input["items"], case.input["capacity"]
        assert len(items) <= 100 and all(1 <= size <= capacity for size in items)
        assert validate_packing(items, capacity, COMPONENT.reference(case.input)) >= (1 if items else 0)


# ============================================================================ the baseline


@pytest.mark.parametrize("language", [RUST, C, WAT])
def test_the_baseline_passes_every_case_and_packs_exactly_like_the_python_oracle(language):
    instance = fresh(baseline(language))
    for case in COMPONENT.fixed_cases() + COMPONENT.random_cases(0, 60):
        output = COMPONENT.call(instance, case.input)
        COMPONENT.check_output(case.input, output.value)
        assert output.value == COMPONENT.reference(case.input), case.id
        assert output.fuel > 0


@pytest.mark.parametrize("language", [RUST, C])
def test_the_baseline_reproduces_the_published_best_fit_figures_deterministically(language):
    wasm = baseline(language)
    or3, weibull = heldout("or3"), heldout("weibull_5k")
    first = COMPONENT.measure(fresh(wasm), or3)
    assert (first["bins"], first["l1"], round(first["excess_pct"], 2)) == (212.0, 201.2, 5.37)
    assert set(first) >= {"bins", "excess_pct", "l1", "fuel", "wall_s"}
    assert without_wall(COMPONENT.measure(fresh(wasm), or3)) == without_wall(first)

    instance = fresh(wasm)
    big = COMPONENT.measure(instance, weibull)
    assert (big["bins"], big["l1"], round(big["excess_pct"], 2)) == (2067.0, 1987.8, 3.98)
    assert without_wall(COMPONENT.measure(fresh(wasm), weibull)) == without_wall(big)
    # measure may run again on the same instance: same packing; the fuel may differ a little there,
    # because the module's allocator starts from a different state (which is why every measurement
    # that is compared or reproduced must start from a fresh instance).
    again = COMPONENT.measure(instance, weibull)
    assert {key: again[key] for key in ("bins", "l1", "excess_pct")} == {
        key: big[key] for key in ("bins", "l1", "excess_pct")
    }
    assert abs(again["fuel"] - big["fuel"]) < big["fuel"] * 1e-6
    # Five pack calls; each well inside the per-call fuel limit.
    assert 5e9 < big["fuel"] < 5 * COMPONENT.limits.fuel / 4
    assert big["wall_s"] > 0


def test_the_wat_baseline_packs_every_held_out_instance_as_c_does():
    """The published best-fit figures (the packing itself is checked against the oracle on every case
    above), instance by instance equal to the C baseline's."""
    wat, c = baseline(WAT), baseline(C)
    for workload_id, figures in (("or3", (212.0, 201.2, 5.37)), ("weibull_5k", (2067.0, 1987.8, 3.98))):
        ours = COMPONENT.measure(fresh(wat), heldout(workload_id))
        assert (ours["bins"], ours["l1"], round(ours["excess_pct"], 2)) == figures
        assert ours["items"] == COMPONENT.measure(fresh(c), heldout(workload_id))["items"]


def test_a_wat_block_that_writes_the_harness_buffers_is_caught():
    instance = fresh(candidate(WAT_TAMPER, WAT))
    with pytest.raises(
        CaseFailure,
        match=r"^bin 0 is over capacity: it holds items 0, 1 of total size 1200, above the capacity 1000",
    ):
        COMPONENT.call(instance, {"capacity": 1000, "items": [600, 600]})
    # The cascade stops at its first case of two items or more: packed into one bin, counted as none.
    assert failure_of(candidate(WAT_TAMPER, WAT)).startswith("pack reports 0 bins but packed into 1")


def test_first_fit_reproduces_the_published_first_fit_figures():
    wasm = candidate(FIRST_FIT)
    cascade(wasm)  # a different heuristic is still valid
    or3 = COMPONENT.measure(fresh(wasm), heldout("or3"))
    weibull = COMPONENT.measure(fresh(wasm), heldout("weibull_5k"))
    assert (or3["bins"], round(or3["excess_pct"], 2)) == (212.75, 5.74)
    assert (weibull["bins"], round(weibull["excess_pct"], 2)) == (2071.8, 4.23)


def test_a_correct_but_different_candidate_is_accepted_in_c_too():
    wasm = candidate(WORST_FIT_C, C)
    cascade(wasm)
    instance = fresh(wasm)
    differs = 0
    for case in COMPONENT.random_cases(1, 20):
        output = COMPONENT.call(instance, case.input).value
        differs += output != COMPONENT.reference(case.input)
    assert differs > 0
    metrics = COMPONENT.measure(fresh(wasm), heldout("or3"))
    assert metrics["bins"] > 212.0  # worst fit is worse, and measured, not refused


def test_training_workloads_are_our_own_seeded_instances_pinned_by_hash():
    workloads = COMPONENT.workloads(Split.TRAIN)
    assert [w.id for w in workloads] == ["train_or", "train_weibull"]
    pinned = {
        "train_or": "b42d9f5e8633b59cf6d989a202a7c707390eac0b4fbb3f73b3b290b29f5d905d",
        "train_weibull": "1cdd114d8af568261b06cc9d89a1ea3cb98c37877b2739f6cf996ae7835e7c99",
    }
    heldout_items = {tuple(i["items"]) for w in COMPONENT.workloads(Split.HELDOUT) for i in w.input}
    for workload in workloads:
        assert workload.split is Split.TRAIN and workload.seed is not None and "generated" in workload.origin
        digest = hashlib.sha256(
            json.dumps(workload.input, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        assert digest == pinned[workload.id]  # the same instances on every machine
        assert not heldout_items & {tuple(i["items"]) for i in workload.input}
    assert [len(i["items"]) for i in workloads[0].input] == [500] * 20
    assert {i["capacity"] for i in workloads[0].input} == {150}
    assert [len(i["items"]) for i in workloads[1].input] == [1000] * 20
    assert {i["capacity"] for i in workloads[1].input} == {100}
    rust = baseline(RUST)
    figures = {w.id: COMPONENT.measure(fresh(rust), w) for w in workloads}
    assert (figures["train_or"]["bins"], figures["train_or"]["l1"]) == (211.25, 201.0)
    assert (figures["train_weibull"]["bins"], figures["train_weibull"]["l1"]) == (420.75, 401.7)


def test_heldout_workloads_name_their_file_and_hash():
    for workload in COMPONENT.workloads(Split.HELDOUT):
        assert workload.split is Split.HELDOUT and workload.seed is None
        name, digest = workload.origin.split(" sha256:")
        assert name == f"{workload.id}.json" and len(digest) == 64
    assert len(heldout("or3").input) == 20 and len(heldout("weibull_5k").input) == 5


# ============================================================================ the data files


def test_a_missing_data_file_is_a_usage_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(UsageError, match=r"or3\.json is missing.*SYNAPSE_BINPACKING_DATA"):
        COMPONENT.workloads(Split.HELDOUT)
    COMPONENT.workloads(Split.TRAIN)  # training data needs no file


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "is not valid JSON"),
        ('{"name": "x"}', 'has no "instances" list'),
        ('{"instances": []}', "must be a non-empty list"),
        ('{"instances": [{"id": "a", "items": [1]}]}', "instance 0 \\('a'\\) has no 'capacity' field"),
        ('{"instances": [{"id": "a", "capacity": 0, "items": [1]}]}', "has capacity 0"),
        (
            '{"instances": [{"id": "a", "capacity": 10, "items": [3, 11]}]}',
            "item 1 is 11; item sizes must be integers in 1..capacity \\(10\\)",
        ),
        ('{"instances": [{"id": "a", "capacity": 10, "items": [3, 2.5]}]}', "item 1 is 2.5"),
    ],
)
def test_a_malformed_data_file_is_a_usage_error_saying_what_is_wrong(tmp_path, monkeypatch, content, problem):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    (tmp_path / "or3.json").write_text(content)
    with pytest.raises(UsageError, match=rf"or3\.json.*{problem}"):
        COMPONENT.workloads(Split.HELDOUT)


def test_a_valid_copy_of_the_data_elsewhere_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    original = heldout("or3")
    for workload in COMPONENT.workloads(Split.HELDOUT):
        shutil.copy(data_dir() / f"{workload.id}.json", tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert heldout("or3").origin == original.origin


# ============================================================================ wrong candidates


def test_nan_scores_are_refused():
    message = failure_of(candidate(NAN_SCORES))
    assert message == (
        "pack failed (-3): at item 0, priority returned a NaN score for bin 0 of the 1 offered; "
        "every score must be a finite number (in C, a score left unwritten stays NaN)"
    )


def test_infinite_scores_are_refused():
    message = failure_of(candidate(INFINITE_SCORE))
    assert "priority returned an infinite (+inf) score for bin" in message and "finite number" in message


def test_scores_of_the_wrong_length_are_refused():
    message = failure_of(candidate(WRONG_LENGTH))
    assert message.startswith(
        "pack failed (-2): at item 0, priority returned 2 scores for the 1 bins offered"
    )


def test_a_panic_is_a_trap_with_a_hint():
    message = failure_of(candidate(PANICS))
    assert message.startswith(
        "trapped: trap (unreachable): wasm trap: wasm `unreachable` instruction executed"
    )
    assert "in Rust this is a panic" in message


def test_c_scores_left_unwritten_or_infinite_are_refused():
    assert "priority returned a NaN score for bin 0" in failure_of(candidate(UNWRITTEN_C, C))
    assert "priority returned an infinite (-inf) score" in failure_of(candidate(NEGATIVE_INFINITY_C, C))


@pytest.mark.parametrize(
    "capacity, items, message",
    [
        (
            1004,
            [600, 600],
            r"item 0 is not placed: assignment\[0\] = -1 is not a bin"
            r" \(an instance of 2 items has bins 0..1\)",
        ),
        (1005, [600, 600], r"item 0 is not placed: assignment\[0\] = 9999 is not a bin"),
        (
            1006,
            [503, 503],
            r"pack reports 2 bins but packed into 1: the bins used are counted from the assignment",
        ),
        (
            1007,
            [600, 600, 600],
            r"bin 0 is over capacity: it holds items 0, 1 of total size 1200, above the capacity 1007",
        ),
        (1008, [600, 600], r"pack failed \(-4\): no bin could hold item 1"),
    ],
    ids=[
        "drops-an-item",
        "bin-out-of-range",
        "packs-an-item-twice",
        "overflows-a-bin",
        "wrecks-the-bin-state",
    ],
)
def test_a_module_that_tampers_with_the_harness_is_caught(capacity, items, message):
    program = tampering_program()
    with pytest.raises(CandidateShapeError):
        assemble(COMPONENT.skeleton(RUST), program)  # as a candidate program it is refused outright
    instance = fresh(build(program))  # as a raw module it runs, and the host checks catch it
    with pytest.raises(CaseFailure, match=f"^{message}"):
        COMPONENT.call(instance, {"capacity": capacity, "items": items})
    # The same module is valid where it does not tamper, on the same instance.
    COMPONENT.call(instance, {"capacity": 1000, "items": items})


@pytest.mark.parametrize(
    "language, block, error",
    [
        (
            RUST,
            "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {"
            " unsafe { ASSIGNMENT[0] = 0; } vec![item; bins.len()] }",
            "cannot find value `ASSIGNMENT`",
        ),
        (
            C,
            "void priority(double item, const double *bins, int n, double *scores) { ta_assignment[0] = 0; }",
            "undeclared identifier 'ta_assignment'",
        ),
    ],
)
def test_a_block_cannot_reach_the_harness_buffers_by_name(language, block, error):
    result = compile_source(assemble(COMPONENT.skeleton(language), block), language)
    assert not result.ok and error in result.log


def test_a_whole_program_that_overflows_a_bin_and_reports_one_bin_is_caught():
    # Edits outside the block (assemble refuses it), but the evaluator also takes modules as they are.
    cheat = whole_program_cheat()
    with pytest.raises(CandidateShapeError):
        assemble(COMPONENT.skeleton(RUST), cheat)
    instance = fresh(build(cheat))
    assert COMPONENT.call(instance, {"capacity": 100, "items": [10, 20, 30]}).value == [0, 0, 0]  # true there
    with pytest.raises(CaseFailure, match="^workload or3, instance u500_00: bin 0 is over capacity"):
        COMPONENT.measure(instance, heldout("or3"))
    with pytest.raises(CaseFailure, match="bin 0 is over capacity"):
        COMPONENT.check_output(heldout("or3").input[0], [0] * 500)


def _wat_module(items_ptr: int, assignment_ptr: int, pack_body: str) -> bytes:
    return bytes(
        wasmtime.wat2wasm(
            f"""(module
              (memory (export "memory") 2 4)
              (func (export "items_ptr") (result i32) i32.const {items_ptr})
              (func (export "assignment_ptr") (result i32) i32.const {assignment_ptr})
              (func (export "error_ptr") (result i32) i32.const 0)
              (func (export "pack") (param i32 i32) (result i32) {pack_body}))"""
        )
    )


def test_raw_modules_that_lie_about_the_count_or_point_outside_memory_are_caught():
    # Assignment memory is all zeros: every item in bin 0.
    one_bin = {"capacity": 100, "items": [10, 20, 30]}
    liar = fresh(_wat_module(1024, 4096, "i32.const 5"))
    with pytest.raises(CaseFailure, match="^pack reports 5 bins but packed into 1"):
        COMPONENT.call(liar, one_bin)
    outside = fresh(_wat_module(1024, 2 * 65536 - 8, "i32.const 1"))
    with pytest.raises(CaseFailure, match=r"^assignment_ptr\(\) = 131064 does not point at 3 bin indices"):
        COMPONENT.call(outside, one_bin)
    no_room = fresh(_wat_module(-8, 4096, "i32.const 1"))
    with pytest.raises(CaseFailure, match=r"^items_ptr\(\) = -8 does not point at room for 3 items"):
        COMPONENT.call(no_room, one_bin)
    trapping = fresh(_wat_module(1024, 4096, "unreachable"))
    with pytest.raises(CaseFailure, match=r"^trapped: trap \(unreachable\)"):
        COMPONENT.call(trapping, one_bin)
    refusing = fresh(_wat_module(1024, 4096, "i32.const -1"))
    with pytest.raises(CaseFailure, match="refused its arguments"):
        COMPONENT.call(refusing, one_bin)


def test_a_candidate_that_passes_the_cases_but_runs_out_of_fuel_on_the_big_workload():
    wasm = candidate(FUEL_HOG)
    cascade(wasm)
    with pytest.raises(CaseFailure) as caught:
        COMPONENT.measure(fresh(wasm), heldout("weibull_5k"))
    message = str(caught.value)
    assert message.startswith(
        "workload weibull_5k, instance test_0: trapped: out_of_fuel: used all 20000000000 units"
    )


def test_the_scale_case_is_an_instance_at_the_item_cap_and_every_baseline_packs_it_with_fuel_to_spare():
    (case,) = COMPONENT.scale_cases()
    items, capacity = case.input["items"], case.input["capacity"]
    assert len(items) == MAX_ITEMS and all(1 <= size <= capacity for size in items)
    assert COMPONENT.scale_cases() == [case]  # the same on every machine: voters re-run it
    for language in (RUST, C, WAT):
        output = COMPONENT.call(fresh(baseline(language)), case.input)
        COMPONENT.check_output(case.input, output.value)
        assert output.fuel < COMPONENT.limits.fuel / 2, (language, output.fuel)


@pytest.mark.parametrize("block", [FUEL_HOG, FULLEST_PER_BIN])
def test_a_rule_whose_calls_cost_the_bins_squared_runs_out_of_fuel_on_the_scale_case(block):
    wasm = candidate(block)
    cascade(wasm)
    (case,) = COMPONENT.scale_cases()
    with pytest.raises(CaseFailure, match="trapped: out_of_fuel: used all 20000000000 units"):
        COMPONENT.call(fresh(wasm), case.input)


def test_the_evaluator_stops_a_rule_that_is_cheap_at_the_training_sizes_at_the_scale_case():
    """The attack the seed-3 search fell for: the cases pass and a training instance fits in the fuel, so
    without the scale case the block was measured, crowned, and failed only on the held-out sets."""
    wasm = candidate(FULLEST_PER_BIN)
    training = COMPONENT.workloads(Split.TRAIN)[1]
    assert len(training.input[0]["items"]) == 1000
    one = Workload(training.id, Split.TRAIN, training.origin, training.seed, training.input[:1])
    assert COMPONENT.measure(fresh(wasm), one)["fuel"] < COMPONENT.limits.fuel
    evaluation = evaluate(COMPONENT, FULLEST_PER_BIN, split=Split.TRAIN, random_cases=10)
    assert evaluation.status is not Outcome.CORRECT
    assert evaluation.first_failure["case"] == f"scale-weibull-{MAX_ITEMS}"
    assert "out_of_fuel" in evaluation.first_failure["message"]
    assert evaluation.cases_passed == evaluation.cases_total - 1
    assert evaluation.workloads == []


def test_the_harness_refuses_more_items_than_its_buffers_and_the_host_never_sends_them():
    instance = fresh(baseline(RUST))
    assert instance.call("pack", MAX_ITEMS + 1, 10).values == (-1,)
    assert instance.call("pack", 3, 0).values == (-1,)
    with pytest.raises(UsageError, match="at most 10000 items"):
        COMPONENT.call(instance, {"capacity": 10, "items": [1] * (MAX_ITEMS + 1)})
    with pytest.raises(UsageError, match="item 1 is 11"):
        COMPONENT.call(instance, {"capacity": 10, "items": [1, 11]})
    # And the module still works afterwards.
    assert COMPONENT.call(instance, {"capacity": 10, "items": [4, 6]}).value == [0, 0]


def test_check_output_explains_what_is_wrong():
    case = {"capacity": 10, "items": [6, 6]}
    COMPONENT.check_output(case, [0, 1])
    COMPONENT.check_output(case, [1, 0])  # any valid packing, not only the reference's
    for output, message in (
        ([0], "has 1 bin indices for 2 items"),
        ([0, 0], "bin 0 is over capacity: it holds items 0, 1 of total size 12"),
        (
            [0, 2],
            r"item 1 is not placed: assignment\[1\] = 2 is not a bin"
            r" \(an instance of 2 items has bins 0..1\)",
        ),
        ([0, True], "item 1 is not placed"),
        ("01", "must be a list of 2 bin indices"),
    ):
        with pytest.raises(CaseFailure, match=message):
            COMPONENT.check_output(case, output)


def test_component_limits_are_set_for_the_big_workload():
    assert COMPONENT.limits == SandboxLimits(fuel=20_000_000_000, timeout_s=60.0)


# ============================================================================ lower bounds: L1 and L2


def _optimal_bins(items: list[int], capacity: int) -> int:
    """The fewest bins that hold `items`, by exhaustive search (tiny instances only)."""
    sizes = sorted(items, reverse=True)
    best = len(sizes)

    def place(k: int, loads: list[int]) -> None:
        nonlocal best
        if len(loads) >= best:
            return
        if k == len(sizes):
            best = len(loads)
            return
        tried = set()
        for j, load in enumerate(loads):
            if load + sizes[k] <= capacity and load not in tried:
                tried.add(load)
                loads[j] += sizes[k]
                place(k + 1, loads)
                loads[j] -= sizes[k]
        place(k + 1, loads + [sizes[k]])

    place(0, [])
    return best


def _l2_by_definition(items: list[int], capacity: int) -> int:
    """Martello–Toth L2 straight from its definition: every integer alpha in [0, C/2], sets by filtering."""
    best = 0
    for alpha in range(capacity // 2 + 1):
        j1 = [w for w in items if w > capacity - alpha]
        j2 = [w for w in items if capacity - alpha >= w and 2 * w > capacity]
        j3 = [w for w in items if 2 * w <= capacity and w >= alpha]
        spill = sum(j3) - (len(j2) * capacity - sum(j2))
        best = max(best, len(j1) + len(j2) + max(0, -(-spill // capacity)))
    return best


def test_l2_on_hand_checked_instances():
    # Sizes 51 in bins of 100: no two share a bin, so n bins; L1 only sees 51 % of that.
    assert l2_bound([51] * 100, 100) == 100 and l1_bound([51] * 100, 100) == 51
    # 60 60 60 45 45 45 in 100: alpha = 45 puts the 60s alone (no 45 fits beside them) and the 45s need
    # ceil(135 / 100) = 2 more bins: 5, the optimum; L1 = ceil(315 / 100) = 4.
    assert l2_bound([60, 60, 60, 45, 45, 45], 100) == 5 and l1_bound([60, 60, 60, 45, 45, 45], 100) == 4
    # 70 70 40 40 in 100: both bounds say 3 (70 | 70 | 40 40), which is optimal.
    assert l2_bound([70, 70, 40, 40], 100) == 3 == l1_bound([70, 70, 40, 40], 100)
    # Odd capacity: C/2 = 2.5, so the 3s are "big" (one per bin) and the 2s are not.
    assert l2_bound([3, 3, 3, 2], 5) == 3 and l1_bound([3, 3, 3, 2], 5) == 3
    assert l2_bound([3, 3, 3, 3], 5) == 4 and l1_bound([3, 3, 3, 3], 5) == 3
    # Exactly half a bin is not "more than half": two of them share a bin.
    assert l2_bound([50, 50, 50, 50], 100) == 2
    assert l2_bound([], 100) == 0 and l2_bound([100], 100) == 1 and l2_bound([1], 1) == 1


def test_best_fit_on_the_size_51_attack_shows_no_excess_over_l2():
    from synapse_ng.node.runtime import production_objective

    items = [51] * 200
    packing = online_pack(items, 100, best_fit_priority)
    assert len(set(packing)) == 200 == l2_bound(items, 100)
    objective = production_objective(COMPONENT, {"capacity": 100, "items": items}, packing, 0)
    assert objective == 0.0  # over L1 (102 bins) it would read 96 % excess
    assert 100.0 * (200 - l1_bound(items, 100)) / l1_bound(items, 100) > 96


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40).flatmap(lambda c: st.tuples(st.just(c), st.lists(st.integers(1, c), max_size=60))))
def test_l2_is_at_least_l1_and_matches_its_definition(instance):
    capacity, items = instance
    assert l2_bound(items, capacity) >= l1_bound(items, capacity)
    assert l2_bound(items, capacity) == _l2_by_definition(items, capacity)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 30).flatmap(lambda c: st.tuples(st.just(c), st.lists(st.integers(1, c), max_size=8))))
def test_l2_never_exceeds_the_optimal_bin_count(instance):
    capacity, items = instance
    optimum = _optimal_bins(items, capacity)
    assert l1_bound(items, capacity) <= l2_bound(items, capacity) <= optimum
    assert optimum <= len(set(online_pack(items, capacity, best_fit_priority)))


def test_l2_is_fast_on_the_largest_instance():
    import random
    import time

    rng = random.Random(7)
    items = [rng.randint(1, 10**9) for _ in range(MAX_ITEMS)]
    started = time.perf_counter()
    bound = l2_bound(items, 2 * 10**9)
    assert time.perf_counter() - started < 1.0  # O(n log n): about 10k binary searches, not 10k² filters
    assert bound >= l1_bound(items, 2 * 10**9)
