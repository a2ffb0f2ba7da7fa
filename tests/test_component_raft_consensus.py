"""raft_consensus: the vote tally component, with real compilers (rustc, clang) and the real sandbox."""

from __future__ import annotations

import random
import struct

import pytest

from synapse_ng.components import (
    CaseFailure,
    Split,
    assemble,
    get_component,
    split_skeleton,
)
from synapse_ng.components.base import ComponentKind
from synapse_ng.components.raft_consensus.component import RaftConsensus
from synapse_ng.components.raft_consensus.generators import make_input
from synapse_ng.components.raft_consensus.host import poison_records
from synapse_ng.components.raft_consensus.tally import (
    MAX_WEIGHT,
    POISON_SLOTS,
    RECORD_BYTES,
    U32_MAX,
    Tally,
    TallyInput,
    Vote,
    reference_tally,
)
from synapse_ng.models import CodeLanguage
from synapse_ng.toolchain import CompileOptions, compile_source
from synapse_ng.wasm.inspect import inspect_wasm
from synapse_ng.wasm.sandbox import Sandbox

RUST, C, WAT = CodeLanguage.RUST, CodeLanguage.C, CodeLanguage.WAT
COMPONENT = RaftConsensus()

# ------------------------------------------------------------------------------------------ candidates

RUST_SORT = r"""
/// Sort (voter, seq, index) keys; the last key of each voter's run is the counted record.
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut keys: Vec<(u64, u32)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (((r.voter as u64) << 32) | r.seq as u64, i as u32))
        .collect();
    keys.sort_unstable();
    let mut t = Tally::default();
    for k in 0..keys.len() {
        let last = k + 1 == keys.len() || (keys[k + 1].0 >> 32) != (keys[k].0 >> 32);
        if last {
            let r = &records[keys[k].1 as usize];
            let w = r.weight as i64;
            match r.choice {
                0 => t.yes += w,
                1 => t.no += w,
                _ => t.abstain += w,
            }
        }
    }
    t.turnout = t.yes + t.no + t.abstain;
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
"""

RUST_HASH = r"""
/// Open addressing on the voter id; each slot holds the index of that voter's counted record.
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut bits = 4u32;
    while (1usize << bits) < 2 * records.len() {
        bits += 1;
    }
    let mask = (1usize << bits) - 1;
    let mut slots: Vec<u32> = vec![u32::MAX; mask + 1];
    for (i, r) in records.iter().enumerate() {
        let mut h = (r.voter.wrapping_mul(0x9E37_79B1) >> (32 - bits.min(31))) as usize & mask;
        loop {
            let s = slots[h];
            if s == u32::MAX {
                slots[h] = i as u32;
                break;
            }
            if records[s as usize].voter == r.voter {
                if r.seq >= records[s as usize].seq {
                    slots[h] = i as u32;
                }
                break;
            }
            h = (h + 1) & mask;
        }
    }
    let mut t = Tally::default();
    for &s in slots.iter() {
        if s != u32::MAX {
            let r = &records[s as usize];
            let w = r.weight as i64;
            match r.choice {
                0 => t.yes += w,
                1 => t.no += w,
                _ => t.abstain += w,
            }
        }
    }
    t.turnout = t.yes + t.no + t.abstain;
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
"""

# Reads one record past its input (through unsafe), i.e. the first poison record.
RUST_READ_PAST = r"""
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let records = unsafe { std::slice::from_raw_parts(records.as_ptr(), records.len() + 1) };
    let mut seen: Vec<(u32, u32, usize)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match seen.iter_mut().find(|e| e.0 == r.voter) {
            Some(e) => {
                if r.seq >= e.1 {
                    e.1 = r.seq;
                    e.2 = i;
                }
            }
            None => seen.push((r.voter, r.seq, i)),
        }
    }
    let mut t = Tally::default();
    for e in seen.iter() {
        let r = &records[e.2];
        let w = r.weight as i64;
        match r.choice {
            0 => t.yes += w,
            1 => t.no += w,
            _ => t.abstain += w,
        }
    }
    t.turnout = t.yes + t.no + t.abstain;
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
"""

_C_SUM_AND_DECIDE = r"""
    if (t.turnout < quorum) t.outcome = 2;
    else if (t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no)) t.outcome = 0;
    else t.outcome = 1;
    return t;
}
"""

# Right on small inputs, silently drops every voter after the 256th.
C_TABLE_256 = (
    r"""
typedef struct { uint32_t voter, seq, index; } Seen;
static Seen seen[256];

static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = 0;
        while (k < distinct && seen[k].voter != records[i].voter) k++;
        if (k == distinct) {
            if (distinct == 256) continue;
            seen[k].voter = records[i].voter; seen[k].seq = records[i].seq; seen[k].index = i;
            distinct++;
        } else if (records[i].seq >= seen[k].seq) {
            seen[k].seq = records[i].seq; seen[k].index = i;
        }
    }
    Tally t = {0, 0, 0, 0, 0};
    for (uint32_t k = 0; k < distinct; k++) {
        const Record *r = &records[seen[k].index];
        if (r->choice == 0) t.yes += r->weight;
        else if (r->choice == 1) t.no += r->weight;
        else t.abstain += r->weight;
        t.turnout += r->weight;
    }
"""
    + _C_SUM_AND_DECIDE
)

# The baseline with an off-by-one: reads records[n], the first poison record.
C_READ_PAST = split_skeleton(COMPONENT.skeleton(C))[1].replace("i < n; i++", "i <= n; i++")

# The WAT baseline with the same off-by-one: its record loop runs while i <= n.
WAT_READ_PAST = split_skeleton(COMPONENT.skeleton(WAT))[1].replace(
    "(if (i32.lt_u (local.get $i) (local.get $n))", "(if (i32.le_u (local.get $i) (local.get $n))"
)

# Correct, but all pairs of records: fine up to a few thousand votes, hopeless at 100k.
C_ALL_PAIRS = (
    r"""
static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    Tally t = {0, 0, 0, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        bool counted = true;
        for (uint32_t j = 0; j < n; j++) {
            if (records[j].voter == records[i].voter &&
                (records[j].seq > records[i].seq || (records[j].seq == records[i].seq && j > i)))
                counted = false;
        }
        if (!counted) continue;
        const Record *r = &records[i];
        if (r->choice == 0) t.yes += r->weight;
        else if (r->choice == 1) t.no += r->weight;
        else t.abstain += r->weight;
        t.turnout += r->weight;
    }
"""
    + _C_SUM_AND_DECIDE
)

# Forgets abstentions in the turnout: the harness itself refuses it (error -5).
C_BAD_TURNOUT = split_skeleton(COMPONENT.skeleton(C))[1].replace(
    "t.turnout += w;", "if (r->choice != 2) t.turnout += w;"
)

# A hash table in static memory (C has no allocator).
C_HASH = (
    r"""
#define SLOTS (1u << 21)
static uint32_t slot[SLOTS];
static uint32_t stamp[SLOTS];
static uint32_t epoch;

static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    uint32_t bits = 4;
    while ((1u << bits) < 2 * n) bits++;
    uint32_t mask = (1u << bits) - 1;
    epoch++;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = (records[i].voter * 0x9E3779B1u) >> (32 - bits);
        for (;;) {
            if (stamp[h] != epoch) { stamp[h] = epoch; slot[h] = i; break; }
            const Record *b = &records[slot[h]];
            if (b->voter == records[i].voter) { if (records[i].seq >= b->seq) slot[h] = i; break; }
            h = (h + 1) & mask;
        }
    }
    Tally t = {0, 0, 0, 0, 0};
    for (uint32_t h = 0; h <= mask; h++) {
        if (stamp[h] != epoch) continue;
        const Record *r = &records[slot[h]];
        if (r->choice == 0) t.yes += r->weight;
        else if (r->choice == 1) t.no += r->weight;
        else t.abstain += r->weight;
        t.turnout += r->weight;
    }
"""
    + _C_SUM_AND_DECIDE
)

# ------------------------------------------------------------------------------------------ helpers

_compiled: dict[tuple[CodeLanguage, str], bytes] = {}


def wasm_of(language: CodeLanguage, block: str | None = None) -> bytes:
    """Compile the skeleton (block None: the baseline) or a candidate block, once per session."""
    source = COMPONENT.skeleton(language) if block is None else assemble(COMPONENT.skeleton(language), block)
    key = (language, source)
    if key not in _compiled:
        options = CompileOptions(
            exports=tuple(spec.name for spec in COMPONENT.exports),
            max_memory_pages=COMPONENT.max_memory_pages,
        )
        result = compile_source(source, language, options)
        assert result.ok, result.log
        report = inspect_wasm(result.wasm, COMPONENT.wasm_policy())
        assert report.ok, report.reasons
        _compiled[key] = result.wasm
    return _compiled[key]


def instance_of(language: CodeLanguage, block: str | None = None, limits=None):
    instance = Sandbox(wasm_of(language, block), limits or COMPONENT.limits).instantiate()
    assert instance.startup.trap is None, instance.startup.trap
    return instance


def run_cases(instance, cases) -> None:
    """The evaluator's cascade: stop at the first failure."""
    for case in cases:
        output = COMPONENT.call(instance, case.input)
        COMPONENT.check_output(case.input, output.value)


def workload(workload_id: str):
    for split in (Split.TRAIN, Split.HELDOUT):
        for item in COMPONENT.workloads(split):
            if item.id == workload_id:
                return item
    raise KeyError(workload_id)


def tally_input(votes, quorum=0, num=1, den=2) -> TallyInput:
    return TallyInput(tuple(Vote(*v) for v in votes), quorum, num, den)


# ------------------------------------------------------------------------------------------ the contract


def test_registered_under_its_name_and_aliases():
    for name in ("raft_consensus", "consensus", "vote_tally", " Vote_Tally "):
        assert get_component(name).name == "raft_consensus"
    component = get_component("raft_consensus")
    assert component.kind is ComponentKind.EXACT
    assert (component.objective.metric, component.objective.direction, component.objective.aggregation) == (
        "fuel",
        "min",
        "sum",
    )
    assert [str(spec) for spec in component.exports] == [
        "records_ptr:->i32",
        "tally:i32,i64,i32,i32->i32",
        "result_ptr:->i32",
    ]
    assert component.limits.memory_bytes == component.max_memory_pages * 65536
    assert component.languages == (RUST, C, WAT)


def test_skeletons_have_one_block_holding_the_baseline():
    for language in (RUST, C, WAT):
        skeleton = COMPONENT.skeleton(language)
        head, block, tail = split_skeleton(skeleton)
        defined = "(func $tally_votes (param" if language is WAT else "tally_votes("
        assert defined in block and defined not in head
        assert all(
            name in tail
            for name in ("fn records_ptr" if language is RUST else '"records_ptr"', "result_ptr", "tally")
        )
        assert assemble(skeleton, COMPONENT.baseline_block(language)) == skeleton
        assert assemble(skeleton, skeleton) == skeleton


def test_reference_semantics():
    W = MAX_WEIGHT
    assert reference_tally(tally_input([], quorum=1)) == Tally(0, 0, 0, 0, 2)
    assert reference_tally(tally_input([], quorum=0)) == Tally(0, 0, 0, 0, 1)
    # Highest seq wins, wherever it is in the input; among equal highest seqs the last one.
    assert reference_tally(tally_input([(7, 5, 0, 3), (7, 2, 1, 9)])) == Tally(3, 0, 0, 3, 0)
    assert reference_tally(tally_input([(7, 3, 0, 3), (7, 3, 1, 9)])) == Tally(0, 9, 0, 9, 1)
    assert reference_tally(tally_input([(7, 3, 1, 9), (7, 1, 0, 1), (7, 3, 0, 4)])) == Tally(4, 0, 0, 4, 0)
    # Inclusive threshold, quorum met at equality, all-abstain rejected.
    assert reference_tally(tally_input([(1, 0, 0, 2), (2, 0, 1, 1)], num=2, den=3)).outcome == 0
    assert reference_tally(tally_input([(1, 0, 0, 2), (2, 0, 1, 2)], num=2, den=3)).outcome == 1
    assert reference_tally(tally_input([(1, 0, 0, 4), (2, 0, 2, 6)], quorum=10)).outcome == 0
    assert reference_tally(tally_input([(1, 0, 0, 4), (2, 0, 2, 6)], quorum=11)).outcome == 2
    assert reference_tally(tally_input([(1, 0, 2, W)], quorum=W)) == Tally(0, 0, W, W, 1)
    with pytest.raises(ValueError):
        tally_input([(1, 0, 0, W + 1)])
    with pytest.raises(ValueError):
        tally_input([], num=3, den=2)


def test_cases_and_workloads_are_reproducible():
    assert COMPONENT.random_cases(5, 16) == RaftConsensus().random_cases(5, 16)
    assert [c.input for c in COMPONENT.random_cases(5, 16)] == [
        c.input for c in RaftConsensus().random_cases(5, 16)
    ]
    cases = COMPONENT.random_cases(5, 16)
    assert sum(len(c.input.votes) > 200 for c in cases) == 2  # the medium ones come last
    assert all(len(c.input.votes) <= 200 for c in cases[:-2]) and all(
        len(c.input.votes) <= 5000 for c in cases
    )
    assert all(len({v.voter for v in c.input.votes}) > 256 for c in cases[-2:])
    fresh = RaftConsensus()
    for split in (Split.TRAIN, Split.HELDOUT):
        ours, theirs = COMPONENT.workloads(split), fresh.workloads(split)
        assert [w.id for w in ours] == [w.id for w in theirs]
        assert all(a.input == b.input for a, b in zip(ours, theirs, strict=True))
    held_out = {w.id: w for w in COMPONENT.workloads(Split.HELDOUT)}
    assert set(held_out) == {"votes_1k", "votes_10k", "votes_100k"}
    assert {w.seed for w in COMPONENT.workloads(Split.TRAIN)}.isdisjoint(w.seed for w in held_out.values())
    big = held_out["votes_100k"].input
    assert len(big.votes) == 100_000 and len({v.voter for v in big.votes}) == 2_000
    # Many duplicates, including repeated sequence numbers for one voter.
    assert len({(v.voter, v.seq) for v in big.votes}) < len(big.votes)


def test_poison_is_fresh_voters_with_big_weights():
    votes = (Vote(0x5EED_0000, 0, 0, 1), Vote(0x5EED_0002, 0, 0, 1))
    poison = poison_records(votes)
    assert len(poison) == POISON_SLOTS
    assert not {p.voter for p in poison} & {v.voter for v in votes}
    assert all(p.weight > MAX_WEIGHT // 2 for p in poison) and poison[0].choice == 0


def test_poison_voters_are_fresh_even_at_the_top_of_u32():
    """Above every input voter when there is room; otherwise the free ids, looked up one by one."""
    top = (Vote(0xFFFF_FFFF, 0, 0, 1), Vote(0x5EED_0001, 0, 1, 1), Vote(0xFFFF_FFC0, 0, 0, 1))
    for votes in (top, (Vote(0xFFFF_FFB0, 0, 0, 1),)):
        poison = poison_records(votes)
        voters = [p.voter for p in poison]
        assert len(set(voters)) == POISON_SLOTS and not set(voters) & {v.voter for v in votes}
        assert all(0 <= voter <= 0xFFFF_FFFF for voter in voters)


# ------------------------------------------------------------------------------------------ the baseline


@pytest.mark.parametrize("language", [RUST, C, WAT])
def test_baseline_passes_every_case(language):
    instance = instance_of(language)
    run_cases(instance, COMPONENT.fixed_cases())
    run_cases(instance, COMPONENT.random_cases(1, 24))
    # Another seed, on a fresh instance, as the evaluator would.
    run_cases(instance_of(language), COMPONENT.random_cases(2, 24))


@pytest.mark.parametrize("language", [RUST, C, WAT])
def test_baseline_measure_is_deterministic(language):
    for split in (Split.TRAIN, Split.HELDOUT):
        for item in COMPONENT.workloads(split):
            first = COMPONENT.measure(instance_of(language), item)
            second = COMPONENT.measure(instance_of(language), item)
            assert set(first) == {"fuel", "wall_s", "votes"}
            assert first["votes"] == len(item.input.votes) and first["fuel"] > 0
            assert {k: v for k, v in first.items() if k != "wall_s"} == {
                k: v for k, v in second.items() if k != "wall_s"
            }


def test_repeated_calls_on_one_instance():
    instance = instance_of(RUST)
    rng = random.Random(3)
    inputs = [make_input(rng, n, voters) for n, voters in ((50, 10), (3, 3), (0, 0), (400, 120), (7, 7))]
    for _ in range(2):
        for item in inputs:
            assert COMPONENT.call(instance, item).value == reference_tally(item)


# ------------------------------------------------------------------------------------- hostile candidates


def test_fixed_table_of_256_voters_is_caught_everywhere():
    # By the fixed cases (one of them has 300 voters) ...
    with pytest.raises(
        CaseFailure, match=r"wrong tally for 300 votes from 300 voters.*expected yes=.*got yes=.*wrong: "
    ):
        run_cases(instance_of(C, C_TABLE_256), COMPONENT.fixed_cases())
    # ... by the medium random cases alone ...
    small_ok = [c for c in COMPONENT.fixed_cases() if len({v.voter for v in c.input.votes}) <= 256]
    run_cases(instance_of(C, C_TABLE_256), small_ok + COMPONENT.random_cases(1, 24)[:-3])
    with pytest.raises(CaseFailure, match=r"expected yes=\d+, no=\d+.*; got yes=\d+"):
        run_cases(instance_of(C, C_TABLE_256), COMPONENT.random_cases(1, 24))
    # ... and by the check inside measure().
    with pytest.raises(
        CaseFailure, match=r"^on workload votes_10k: wrong tally for 10000 votes.*expected .*; got "
    ):
        COMPONENT.measure(instance_of(C, C_TABLE_256), workload("votes_10k"))


@pytest.mark.parametrize(
    "language, block",
    [(C, C_READ_PAST), (RUST, RUST_READ_PAST), (WAT, WAT_READ_PAST)],
    ids=["c", "rust", "wat"],
)
def test_reading_past_the_input_is_caught(language, block):
    instance = instance_of(language, block)
    # With no votes, any weight at all is more than 0 records carry: the harness refuses it (error -4).
    with pytest.raises(
        CaseFailure,
        match=r"read records past the first n.*\(error -4\); for 0 votes .*wrote yes=1048576.*"
        r"expected yes=0, no=0, abstain=0, turnout=0",
    ):
        run_cases(instance, COMPONENT.fixed_cases())
    # Three votes: the totals stay in range, so it is the comparison with the reference that catches it.
    with pytest.raises(
        CaseFailure,
        match=r"wrong tally for 3 votes .*expected yes=5, no=50.*; got yes=1048581, no=50.*"
        r"\(wrong: yes, turnout, outcome\)",
    ):
        run_cases(instance, [c for c in COMPONENT.fixed_cases() if c.id == "equal_seq_last_wins_weight"])
    # Whatever n is, the record after the input is poison.
    for item in (COMPONENT.random_cases(4, 3)[0].input, workload("votes_1k").input):
        with pytest.raises(CaseFailure, match="wrong tally"):
            COMPONENT.check_output(item, COMPONENT.call(instance, item).value)


def test_the_wat_baseline_tallies_what_rust_and_c_tally_and_rebuilds_for_a_vote():
    """Every workload, field by field, against the reference (as every measure does) and the C module;
    a governance vote rebuilds a WAT block inside the WAT skeleton, to the module the engine built."""
    from synapse_ng.evolution.build import build_candidate
    from synapse_ng.governance.verify import rebuild

    wat, c = instance_of(WAT), instance_of(C)
    for split in (Split.TRAIN, Split.HELDOUT):
        for item in COMPONENT.workloads(split):
            if len(item.input.votes) <= 20_000:
                assert COMPONENT.call(wat, item.input).value == COMPONENT.call(c, item.input).value
    block = COMPONENT.baseline_block(WAT)
    built = build_candidate(COMPONENT, block, WAT)
    assert built.language == "wat" and built.wasm == wasm_of(WAT)
    assert rebuild(COMPONENT, block, WAT).sha256 == built.sha256
    assert rebuild(COMPONENT, COMPONENT.skeleton(WAT), WAT).sha256 == built.sha256


def test_a_wat_block_that_overwrites_the_harness_is_caught():
    """WAT names reach the whole module, so a block can write the harness's buffers: here it zeroes
    every weight in the records it is handed, then tallies. The comparison with the reference catches it."""
    block = COMPONENT.baseline_block(WAT).replace(
        "(local.set $r (i32.add (local.get $records) (i32.shl (local.get $i) (i32.const 4))))",
        "(local.set $r (i32.add (local.get $records) (i32.shl (local.get $i) (i32.const 4))))\n"
        "      (i32.store offset=12 (local.get $r) (i32.const 0))",
    )
    assert block != COMPONENT.baseline_block(WAT)
    with pytest.raises(CaseFailure, match=r"wrong tally for .*expected yes=.*; got yes=0, no=0"):
        run_cases(instance_of(WAT, block), COMPONENT.fixed_cases())


def test_inconsistent_totals_are_refused_by_the_harness():
    instance = instance_of(C, C_BAD_TURNOUT)
    item = tally_input([(1, 0, 0, 5), (2, 0, 2, 7)])
    with pytest.raises(
        CaseFailure,
        match=r"turnout that is not yes \+ no \+ abstain \(error -5\).*turnout=5; expected .*turnout=12",
    ):
        COMPONENT.call(instance, item)


def test_correct_but_quadratic_runs_out_of_fuel_on_the_big_workload():
    slow = instance_of(C, C_ALL_PAIRS)
    run_cases(slow, COMPONENT.fixed_cases())
    run_cases(slow, COMPONENT.random_cases(1, 16))
    COMPONENT.measure(instance_of(C, C_ALL_PAIRS), workload("votes_1k"))
    # Under the component's own limits the baseline passes votes_100k and the all-pairs tally does not.
    big = workload("votes_100k")
    baseline = COMPONENT.measure(instance_of(C), big)
    assert baseline["fuel"] < COMPONENT.limits.fuel / 2
    with pytest.raises(CaseFailure, match=r"^on workload votes_100k: trapped: out_of_fuel"):
        COMPONENT.measure(instance_of(C, C_ALL_PAIRS), big)


@pytest.mark.parametrize(
    "language, block",
    [(RUST, RUST_SORT), (RUST, RUST_HASH), (C, C_HASH)],
    ids=["rust-sort", "rust-hash", "c-hash"],
)
def test_correct_faster_candidates_pass_and_use_less_fuel(language, block):
    instance = instance_of(language, block)
    run_cases(instance, COMPONENT.fixed_cases())
    run_cases(instance, COMPONENT.random_cases(1, 24))
    big = workload("votes_100k")
    candidate = COMPONENT.measure(instance_of(language, block), big)
    baseline = COMPONENT.measure(instance_of(language), big)
    assert candidate["fuel"] * 5 < baseline["fuel"], (candidate, baseline)
    assert COMPONENT.objective.better(candidate["fuel"], baseline["fuel"])


@pytest.mark.parametrize(
    "record",
    [
        (-1, 1, 0, 1),  # a negative voter
        (U32_MAX + 1, 1, 0, 1),  # a voter beyond u32
        (5, -3, 0, 1),  # a negative seq
        (5, 1, 3, 1),  # a choice that is none of yes, no, abstain
        (5, 1, 0, MAX_WEIGHT + 1),  # a weight above the bound
        (5, 1, 0, -1),  # a negative weight
        (5, 1.0, 0, 1),  # not an integer
    ],
)
def test_an_invalid_vote_record_is_refused_by_name_among_valid_ones(record):
    votes = tuple(Vote(voter, 1, 0, 1) for voter in range(50)) + (Vote(*record),)
    with pytest.raises(ValueError, match=r"invalid vote record Vote\(voter="):
        TallyInput(votes, 0, 1, 2)


def test_the_input_packs_its_records_as_the_module_reads_them():
    votes = (Vote(7, 2, 1, 30), Vote(U32_MAX, U32_MAX, 2, MAX_WEIGHT), Vote(0, 0, 0, 0))
    packed = TallyInput(votes, 0, 1, 2)
    assert packed.records == struct.pack("<12I", *[field for vote in votes for field in vote])
    assert len(packed.records) == RECORD_BYTES * len(votes) and packed.highest_voter == U32_MAX
    assert TallyInput((), 0, 1, 2).records == b"" and TallyInput((), 0, 1, 2).highest_voter == -1
