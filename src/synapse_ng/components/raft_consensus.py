"""raft_consensus: the vote tally that closes a governance proposal (exact component, objective: fuel).

Semantics (the Python `reference` below implements them and is the oracle)
--------------------------------------------------------------------------
Input: a sequence of vote records, each ``(voter, seq, choice, weight)`` with ``voter`` and ``seq``
unsigned 32-bit integers, ``choice`` 0 = yes, 1 = no, 2 = abstain, and ``weight`` an integer in
``0..=2**20``; a ``quorum`` (integer ``0 <= quorum < 2**63``: the minimum total counted weight); a
threshold ``num/den`` (integers, ``0 < num <= den <= 65535``).

1. Per voter, exactly one record counts: the one with the highest ``seq``; among that voter's records
   with the same highest ``seq``, the LAST one in input order. Every other record is ignored.
2. ``yes``, ``no``, ``abstain`` are the sums of the weights of the counted records with that choice;
   ``turnout = yes + no + abstain`` (the sum of all counted weights).
3. ``outcome`` is 2 (no quorum) if ``turnout < quorum``; otherwise 0 (approved) if ``yes + no > 0`` and
   ``yes * den >= num * (yes + no)``; otherwise 1 (rejected). All integer arithmetic (no floats):
   with at most 2**20 records of weight at most 2**20 every product fits an i64.

Consequences worth stating: no votes give turnout 0, so "no quorum" unless quorum is 0, and then
"rejected" (yes + no == 0); all-abstain with quorum met is "rejected"; ``yes * den == num * (yes + no)``
is "approved" (the threshold is inclusive); ``turnout == quorum`` meets the quorum.

ABI (the skeleton's fixed harness, identical in Rust and C)
-----------------------------------------------------------
- ``records_ptr() -> i32``: address of a static buffer of ``MAX_VOTES + POISON_SLOTS`` records
  (``MAX_VOTES = 2**20``, ``POISON_SLOTS = 64``), each 16 bytes: four little-endian u32
  ``voter, seq, choice, weight``. The host writes the n input records at the start, then
  ``POISON_SLOTS`` plausible records of fresh voters with large weights right after them, so a tally
  that reads past its input comes out wrong.
- ``tally(n: i32, quorum: i64, num: i32, den: i32) -> i32``: runs the evolvable function on the first n
  records, writes ``yes, no, abstain, turnout`` (4 x i64) to the result buffer, checks them and returns
  the outcome (0, 1, 2) or a negative error code (see ``ERRORS``).
- ``result_ptr() -> i32``: address of the result buffer (4 x i64, 32 bytes).

The host checks everything itself anyway: the result is compared field by field with the reference,
on every case and on every measured workload. Fuel is what the sandbox counted, never what the module
says.
"""

from __future__ import annotations

import itertools
import random
from array import array
from dataclasses import dataclass
from math import gcd
from typing import Any, NamedTuple

from ..models import CodeLanguage
from ..wasm.inspect import ExportSpec
from ..wasm.memory import MemoryAccessError
from ..wasm.sandbox import Instance, SandboxLimits
from .base import (
    CallOutput,
    Case,
    CaseFailure,
    Component,
    ComponentKind,
    Objective,
    Split,
    Workload,
)

MAX_VOTES = 1 << 20
POISON_SLOTS = 64
MAX_WEIGHT = 1 << 20
MAX_THRESHOLD = 65535
U32_MAX = 0xFFFFFFFF
MAX_QUORUM = (1 << 63) - 1
RECORD_BYTES = 16

OUTCOMES = {0: "approved", 1: "rejected", 2: "no quorum"}

# Negative return codes of the harness's `tally` export.
ERRORS = {
    -1: "the harness refused n (outside 0..=1048576); this is a host error, not the candidate's",
    -2: "the harness refused the threshold (needs 0 < num <= den <= 65535); this is a host error",
    -3: "the harness refused the quorum (negative); this is a host error",
    -4: (
        "tally_votes returned a total outside 0..=n*2^20 (negative, or more weight than the n input records "
        "can carry: does it read records past the first n, or overflow?)"
    ),
    -5: "tally_votes returned a turnout that is not yes + no + abstain",
    -6: "tally_votes returned an outcome outside 0..=2 (0 approved, 1 rejected, 2 no quorum)",
}


class Vote(NamedTuple):
    voter: int
    seq: int
    choice: int  # 0 yes, 1 no, 2 abstain
    weight: int


class Tally(NamedTuple):
    yes: int
    no: int
    abstain: int
    turnout: int
    outcome: int  # 0 approved, 1 rejected, 2 no quorum

    def describe(self) -> str:
        outcome = OUTCOMES.get(self.outcome, "invalid")
        return (
            f"yes={self.yes}, no={self.no}, abstain={self.abstain}, turnout={self.turnout}, "
            f"outcome={self.outcome} ({outcome})"
        )


@dataclass(frozen=True, repr=False)
class TallyInput:
    votes: tuple[Vote, ...]
    quorum: int
    num: int
    den: int

    def __post_init__(self) -> None:
        if len(self.votes) > MAX_VOTES:
            raise ValueError(f"at most {MAX_VOTES} votes fit the module's buffer, got {len(self.votes)}")
        if not 0 <= self.quorum <= MAX_QUORUM:
            raise ValueError(f"quorum must be in 0..=2^63-1, got {self.quorum}")
        if not 0 < self.num <= self.den <= MAX_THRESHOLD:
            raise ValueError(f"threshold must satisfy 0 < num <= den <= {MAX_THRESHOLD}, got {self.num}/{self.den}")
        for vote in self.votes:
            if not (0 <= vote.voter <= U32_MAX and 0 <= vote.seq <= U32_MAX and vote.choice in (0, 1, 2) and 0 <= vote.weight <= MAX_WEIGHT):
                raise ValueError(f"invalid vote record {vote!r}")

    def describe(self) -> str:
        voters = len({vote.voter for vote in self.votes})
        return f"{len(self.votes)} votes from {voters} voters, quorum {self.quorum}, threshold {self.num}/{self.den}"

    def __repr__(self) -> str:
        shown = ", ".join(f"({v.voter}, {v.seq}, {v.choice}, {v.weight})" for v in self.votes[:12])
        more = f", ... {len(self.votes) - 12} more" if len(self.votes) > 12 else ""
        return (
            f"TallyInput(quorum={self.quorum}, threshold={self.num}/{self.den}, "
            f"{len(self.votes)} votes (voter, seq, choice, weight): [{shown}{more}])"
        )


def reference_tally(input: TallyInput) -> Tally:
    """The oracle: exactly the semantics in the module docstring."""
    counted: dict[int, Vote] = {}
    for vote in input.votes:
        best = counted.get(vote.voter)
        if best is None or vote.seq >= best.seq:  # >=: the last of equal highest seqs wins
            counted[vote.voter] = vote
    totals = [0, 0, 0]
    for vote in counted.values():
        totals[vote.choice] += vote.weight
    yes, no, abstain = totals
    turnout = yes + no + abstain
    if turnout < input.quorum:
        outcome = 2
    elif yes + no > 0 and yes * input.den >= input.num * (yes + no):
        outcome = 0
    else:
        outcome = 1
    return Tally(yes, no, abstain, turnout, outcome)


def poison_records(votes: tuple[Vote, ...]) -> list[Vote]:
    """Records written after the input: new voters (not in the input), big weights, yes and no votes.
    Whatever a tally that reads past its input picks up of these changes yes or no by ~2^20."""
    used = {vote.voter for vote in votes}
    poison: list[Vote] = []
    voter = 0x5EED_0000
    while len(poison) < POISON_SLOTS:
        if voter not in used:
            index = len(poison)
            poison.append(Vote(voter, 7 + index, index % 2, MAX_WEIGHT - index))
        voter += 1
    return poison


def make_votes(rng: random.Random, count: int, voters: int, edge_values: bool = False) -> tuple[Vote, ...]:
    """`count` shuffled records from `voters` distinct voters, each voting several times with
    increasing or repeated sequence numbers; the weight usually stays the voter's stake."""
    voters = max(1, min(voters, count)) if count else 0
    ids = set()
    if edge_values and voters:
        ids.update(rng.sample([0, 1, U32_MAX, U32_MAX - 1], k=min(voters, rng.randint(1, 4))))
    while len(ids) < voters:
        ids.add(rng.getrandbits(32))
    ids = sorted(ids)
    rng.shuffle(ids)
    stakes = {voter: rng.choice((MAX_WEIGHT, rng.randint(0, MAX_WEIGHT), rng.randint(1, 1000))) for voter in ids}
    # Every voter votes at least once, the rest of the records go to random voters.
    owners = ids + [rng.choice(ids) for _ in range(count - voters)] if voters else []
    next_seq: dict[int, int] = {}
    for voter in ids:
        if edge_values and rng.random() < 0.15:
            next_seq[voter] = rng.choice((0, U32_MAX - rng.randint(0, 3)))
        else:
            next_seq[voter] = rng.randint(0, 1000)
    records = []
    for voter in owners:
        seq = next_seq[voter]
        roll = rng.random()
        if roll < 0.25:
            step = 0  # a repeated sequence number: the later record (in input order) wins
        elif roll < 0.9:
            step = 1
        else:
            step = rng.randint(2, 1000)
        next_seq[voter] = min(U32_MAX, seq + step)
        weight = stakes[voter] if rng.random() < 0.8 else rng.randint(0, MAX_WEIGHT)
        choice = rng.choices((0, 1, 2), weights=(45, 40, 15))[0]
        records.append(Vote(voter, seq, choice, weight))
    rng.shuffle(records)
    return tuple(records)


def _pick_threshold_and_quorum(rng: random.Random, votes: tuple[Vote, ...]) -> tuple[int, int, int]:
    """A threshold and quorum that often sit exactly on the boundaries of this input's tally."""
    totals = reference_tally(TallyInput(votes, 0, 1, 1))
    yes, no, turnout = totals.yes, totals.no, totals.turnout
    roll = rng.random()
    if roll < 0.25 and yes + no > 0:
        # Exactly on the threshold when it can be written with den <= 65535.
        g = gcd(yes, yes + no)
        num, den = yes // g, (yes + no) // g
        if not (0 < num <= den <= MAX_THRESHOLD):
            num, den = 1, 2
    elif roll < 0.5:
        num, den = rng.choice(((1, 2), (2, 3), (3, 4), (1, 1), (1, 65535), (65535, 65535), (32768, 65535)))
    else:
        den = rng.randint(1, MAX_THRESHOLD)
        num = rng.randint(1, den)
    quorum = rng.choice((0, turnout, turnout + 1, max(0, turnout - 1), rng.randint(0, 2 * turnout + 1)))
    return quorum, num, den


def make_input(rng: random.Random, count: int, voters: int, edge_values: bool = True) -> TallyInput:
    votes = make_votes(rng, count, voters, edge_values)
    quorum, num, den = _pick_threshold_and_quorum(rng, votes)
    return TallyInput(votes, quorum, num, den)


# ---------------------------------------------------------------------------------------- skeletons

RUST_SKELETON = r"""// raft_consensus: the vote tally that closes a governance proposal.
// Fixed harness: the record buffer, the result buffer and the exported entry points. Only the block
// between the EVOLVE markers may change: it must define `tally_votes` with the same signature.
//
// Semantics: per voter only the record with the highest `seq` counts; among that voter's records with
// the same highest `seq`, the LAST one in the slice counts. yes/no/abstain = sums of the weights of the
// counted records by choice (0 yes, 1 no, 2 abstain); turnout = yes + no + abstain. outcome = 2 (no
// quorum) if turnout < quorum, else 0 (approved) if yes + no > 0 and yes * den >= num * (yes + no),
// else 1 (rejected). Weights are at most 2^20 and there are at most 2^20 records: i64 never overflows.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    pub voter: u32,
    pub seq: u32,
    pub choice: u32, // 0 yes, 1 no, 2 abstain
    pub weight: u32, // at most 2^20
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub yes: i64,
    pub no: i64,
    pub abstain: i64,
    pub turnout: i64,
    pub outcome: i32, // 0 approved, 1 rejected, 2 no quorum
}

pub const MAX_VOTES: usize = 1 << 20;
pub const POISON_SLOTS: usize = 64;

static mut RECORDS: [Record; MAX_VOTES + POISON_SLOTS] =
    [Record { voter: 0, seq: 0, choice: 0, weight: 0 }; MAX_VOTES + POISON_SLOTS];
static mut RESULT: [i64; 4] = [0; 4];

// EVOLVE-BLOCK-START
/// Baseline: a list of (voter, best seq, index of the counted record), one entry per distinct voter,
/// searched linearly for every record (O(records x voters)); then the counted records are summed.
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut seen: Vec<(u32, u32, usize)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut found = false;
        for entry in seen.iter_mut() {
            if entry.0 == r.voter {
                if r.seq >= entry.1 {
                    entry.1 = r.seq;
                    entry.2 = i;
                }
                found = true;
                break;
            }
        }
        if !found {
            seen.push((r.voter, r.seq, i));
        }
    }
    let mut t = Tally::default();
    for entry in seen.iter() {
        let r = &records[entry.2];
        let w = r.weight as i64;
        match r.choice {
            0 => t.yes += w,
            1 => t.no += w,
            _ => t.abstain += w,
        }
        t.turnout += w;
    }
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
// EVOLVE-BLOCK-END

#[no_mangle]
pub extern "C" fn records_ptr() -> i32 {
    unsafe { RECORDS.as_ptr() as i32 }
}

#[no_mangle]
pub extern "C" fn result_ptr() -> i32 {
    unsafe { RESULT.as_ptr() as i32 }
}

#[no_mangle]
pub extern "C" fn tally(n: i32, quorum: i64, num: i32, den: i32) -> i32 {
    if n < 0 || n as usize > MAX_VOTES {
        return -1;
    }
    if num <= 0 || den <= 0 || num > den || den > 65535 {
        return -2;
    }
    if quorum < 0 {
        return -3;
    }
    let records: &[Record] = unsafe { &RECORDS[..n as usize] };
    let t = tally_votes(records, quorum, num as i64, den as i64);
    unsafe {
        RESULT = [t.yes, t.no, t.abstain, t.turnout];
    }
    let cap = (n as i64) << 20;
    for v in [t.yes, t.no, t.abstain, t.turnout] {
        if v < 0 || v > cap {
            return -4;
        }
    }
    if t.yes + t.no + t.abstain != t.turnout {
        return -5;
    }
    if t.outcome < 0 || t.outcome > 2 {
        return -6;
    }
    t.outcome
}
"""

C_SKELETON = r"""/* raft_consensus: the vote tally that closes a governance proposal.
 * Fixed harness: the record buffer, the result buffer and the exported entry points. Only the block
 * between the EVOLVE markers may change: it must define `tally_votes` with the same signature.
 *
 * Semantics: per voter only the record with the highest `seq` counts; among that voter's records with
 * the same highest `seq`, the LAST one in the array counts. yes/no/abstain = sums of the weights of the
 * counted records by choice (0 yes, 1 no, 2 abstain); turnout = yes + no + abstain. outcome = 2 (no
 * quorum) if turnout < quorum, else 0 (approved) if yes + no > 0 and yes * den >= num * (yes + no),
 * else 1 (rejected). Weights are at most 2^20 and there are at most 2^20 records: int64 never overflows.
 * Freestanding: no libc (only stdint.h, stddef.h, stdbool.h, float.h, limits.h), so no malloc: use
 * static arrays. */
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define MAX_VOTES (1u << 20)
#define POISON_SLOTS 64u

typedef struct {
    uint32_t voter;
    uint32_t seq;
    uint32_t choice; /* 0 yes, 1 no, 2 abstain */
    uint32_t weight; /* at most 2^20 */
} Record;

typedef struct {
    int64_t yes;
    int64_t no;
    int64_t abstain;
    int64_t turnout;
    int32_t outcome; /* 0 approved, 1 rejected, 2 no quorum */
} Tally;

static Record RECORDS[MAX_VOTES + POISON_SLOTS];
static int64_t RESULT[4];

// EVOLVE-BLOCK-START
/* Baseline: a table of (voter, best seq, index of the counted record), one entry per distinct voter,
 * searched linearly for every record (O(records x voters)); then the counted records are summed. */
typedef struct {
    uint32_t voter;
    uint32_t seq;
    uint32_t index;
} Seen;

static Seen seen[MAX_VOTES];

static Tally tally_votes(const Record *records, uint32_t n, int64_t quorum, int64_t num, int64_t den) {
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < n; i++) {
        const Record *r = &records[i];
        uint32_t k = 0;
        while (k < distinct && seen[k].voter != r->voter) k++;
        if (k == distinct) {
            seen[k].voter = r->voter;
            seen[k].seq = r->seq;
            seen[k].index = i;
            distinct++;
        } else if (r->seq >= seen[k].seq) {
            seen[k].seq = r->seq;
            seen[k].index = i;
        }
    }
    Tally t;
    t.yes = 0;
    t.no = 0;
    t.abstain = 0;
    t.turnout = 0;
    for (uint32_t k = 0; k < distinct; k++) {
        const Record *r = &records[seen[k].index];
        int64_t w = (int64_t)r->weight;
        if (r->choice == 0) t.yes += w;
        else if (r->choice == 1) t.no += w;
        else t.abstain += w;
        t.turnout += w;
    }
    if (t.turnout < quorum) t.outcome = 2;
    else if (t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no)) t.outcome = 0;
    else t.outcome = 1;
    return t;
}
// EVOLVE-BLOCK-END

__attribute__((export_name("records_ptr"))) int32_t records_ptr(void) {
    return (int32_t)(uintptr_t)RECORDS;
}

__attribute__((export_name("result_ptr"))) int32_t result_ptr(void) {
    return (int32_t)(uintptr_t)RESULT;
}

__attribute__((export_name("tally"))) int32_t tally(int32_t n, int64_t quorum, int32_t num, int32_t den) {
    if (n < 0 || (uint32_t)n > MAX_VOTES) return -1;
    if (num <= 0 || den <= 0 || num > den || den > 65535) return -2;
    if (quorum < 0) return -3;
    Tally t = tally_votes(RECORDS, (uint32_t)n, quorum, (int64_t)num, (int64_t)den);
    RESULT[0] = t.yes;
    RESULT[1] = t.no;
    RESULT[2] = t.abstain;
    RESULT[3] = t.turnout;
    int64_t cap = (int64_t)n << 20;
    if (t.yes < 0 || t.yes > cap || t.no < 0 || t.no > cap || t.abstain < 0 || t.abstain > cap ||
        t.turnout < 0 || t.turnout > cap)
        return -4;
    if (t.yes + t.no + t.abstain != t.turnout) return -5;
    if (t.outcome < 0 || t.outcome > 2) return -6;
    return t.outcome;
}
"""

# (id, seed, votes, voters) of the generated workloads. Held-out seeds are never used for training.
_WORKLOADS = {
    Split.TRAIN: (("train_2k", 0x7A11_0001, 2_000, 200), ("train_20k", 0x7A11_0002, 20_000, 1_000)),
    Split.HELDOUT: (
        ("votes_1k", 0x5EA1_0001, 1_000, 100),
        ("votes_10k", 0x5EA1_0002, 10_000, 1_000),
        ("votes_100k", 0x5EA1_0003, 100_000, 2_000),
    ),
}


def workload_input(seed: int, count: int, voters: int) -> TallyInput:
    """A workload's input, rebuilt from its seed (the same on every machine)."""
    rng = random.Random(seed)
    votes = make_votes(rng, count, voters, edge_values=False)
    stakes: dict[int, int] = {}
    for vote in votes:
        stakes[vote.voter] = max(stakes.get(vote.voter, 0), vote.weight)
    # Quorum: half the electorate's largest weights; threshold: a two-thirds supermajority.
    return TallyInput(votes, sum(stakes.values()) // 2, 2, 3)


class RaftConsensus(Component):
    name = "raft_consensus"
    aliases = ("consensus", "vote_tally")
    kind = ComponentKind.EXACT
    description = (
        "Vote tally closing a governance proposal: per voter the record with the highest sequence number "
        "counts (the last one in input order among equal highest sequences); weighted yes/no/abstain "
        "totals, turnout, and the outcome against an integer quorum and a rational threshold num/den."
    )
    objective = Objective(
        metric="fuel",
        direction="min",
        aggregation="sum",
        description="wasm fuel burnt by the tally over the workload's calls (deterministic); lower is better",
    )
    exports = (
        ExportSpec("records_ptr", (), ("i32",)),
        ExportSpec("tally", ("i32", "i64", "i32", "i32"), ("i32",)),
        ExportSpec("result_ptr", (), ("i32",)),
    )
    languages = (CodeLanguage.RUST, CodeLanguage.C)
    max_memory_pages = 1024  # 64 MiB: 16 MiB of records, the rest for a candidate's own tables
    # Per call. The baseline burns ~1.8 G fuel (Rust; C ~1.6 G) in ~0.15 s on the largest workload
    # (votes_100k): 6 G leaves it a 3x margin and stops anything much slower in well under a second.
    limits = SandboxLimits(fuel=6_000_000_000, memory_bytes=1024 * 65536, timeout_s=20.0)

    def __init__(self) -> None:
        self._workloads: dict[Split, list[Workload]] = {}

    # ------------------------------------------------------------------ program and oracle

    def skeleton(self, language: CodeLanguage) -> str:
        if language is CodeLanguage.RUST:
            return RUST_SKELETON
        if language is CodeLanguage.C:
            return C_SKELETON
        raise ValueError(f"{self.name} has skeletons for rust and c, not {language.value}")

    def reference(self, input: TallyInput) -> Tally:
        return reference_tally(input)

    # ------------------------------------------------------------------ cases

    def fixed_cases(self) -> list[Case]:
        W = MAX_WEIGHT
        M = U32_MAX

        def case(id: str, votes, quorum: int = 0, num: int = 1, den: int = 2) -> Case:
            return Case(id, TallyInput(tuple(Vote(*v) for v in votes), quorum, num, den))

        cases = [
            case("no_votes_quorum_1", [], quorum=1),
            case("no_votes_quorum_0", [], quorum=0),
            case("one_yes", [(1, 0, 0, 10)], quorum=10),
            case("one_no", [(1, 0, 1, 10)], quorum=10),
            case("one_abstain", [(1, 0, 2, 10)], quorum=10),
            case("one_yes_below_quorum", [(1, 0, 0, 10)], quorum=11),
            case("zero_weight_yes", [(1, 0, 0, 0)], quorum=0),
            case("increasing_seq_changes_mind", [(7, 1, 0, 100), (7, 2, 1, 100)]),
            case("higher_seq_first_in_input", [(7, 5, 0, 100), (7, 2, 1, 100), (7, 4, 1, 100)]),
            case("equal_seq_last_in_input_wins", [(7, 3, 0, 100), (7, 3, 1, 100)]),
            case("equal_seq_last_wins_weight", [(7, 3, 0, 100), (7, 3, 0, 5), (8, 1, 1, 50)]),
            case("equal_highest_seq_after_lower", [(7, 3, 1, 9), (7, 1, 0, 1), (7, 3, 0, 4), (7, 2, 1, 8)]),
            case("later_zero_weight_supersedes", [(7, 1, 0, W), (7, 2, 0, 0), (8, 0, 1, 1)]),
            case("interleaved_voters", [(1, 1, 0, 3), (2, 1, 1, 4), (1, 2, 1, 3), (3, 9, 2, 5), (2, 0, 0, 4), (3, 9, 0, 6)]),
            case("all_abstain", [(1, 0, 2, 5), (2, 0, 2, 7), (1, 1, 2, 5)], quorum=12),
            case("threshold_exact_approved", [(1, 0, 0, 2), (2, 0, 1, 1)], num=2, den=3),
            case("threshold_just_below_rejected", [(1, 0, 0, 2), (2, 0, 1, 2)], num=2, den=3),
            case("threshold_half_tie_approved", [(1, 0, 0, 5), (2, 0, 1, 5)], num=1, den=2),
            case("unanimity_one_no_rejected", [(1, 0, 0, W), (2, 0, 0, W), (3, 0, 1, 1)], num=65535, den=65535),
            case("unanimity_all_yes_approved", [(1, 0, 0, W), (2, 0, 0, W), (3, 0, 2, W)], num=65535, den=65535),
            case("tiny_threshold", [(1, 0, 0, 1), (2, 0, 1, 65534)], num=1, den=65535),
            case("tiny_threshold_miss", [(1, 0, 0, 1), (2, 0, 1, 65535)], num=1, den=65535),
            case("quorum_exactly_met", [(1, 0, 0, 4), (2, 0, 1, 3), (3, 0, 2, 3)], quorum=10),
            case("quorum_missed_by_one", [(1, 0, 0, 4), (2, 0, 1, 3), (3, 0, 2, 3)], quorum=11),
            case("quorum_huge", [(1, 0, 0, W)], quorum=MAX_QUORUM),
            case("voter_0_and_u32_max", [(0, 0, 0, 11), (M, 0, 1, 13), (0, 1, 1, 17), (M, 1, 0, 19)]),
            case("seq_u32_max_wins", [(5, M, 0, 3), (5, 0, 1, 7), (5, M - 1, 1, 9)]),
            case("seq_u32_max_equal_last_wins", [(5, M, 0, 3), (5, M, 1, 7), (6, 0, 0, 1)]),
            case("seq_0_only", [(5, 0, 1, 3), (5, 0, 0, 7)]),
            case("max_weights_many_voters", [(v, 0, v % 3, W) for v in range(300)], quorum=300 * W, num=1, den=3),
            case("one_voter_many_records", [(42, (i * 7919) % 1000, i % 3, i) for i in range(1000)]),
            case("many_voters_one_record_each", [(i * 2654435761 % (M + 1), 0, i % 3, i % 1000) for i in range(1000)]),
        ]
        return cases

    def random_cases(self, seed: int, count: int) -> list[Case]:
        """Small cases (up to 200 votes, up to 60 voters) first, then a few medium ones (up to 5,000
        votes from 300 to 1,500 voters): max(1, count // 8) of them once count >= 2."""
        rng = random.Random(f"raft_consensus/cases/{seed}")
        medium = max(1, count // 8) if count >= 2 else 0
        cases = []
        for index in range(count):
            if index < count - medium:
                n = rng.choice((rng.randint(0, 20), rng.randint(0, 200)))
                voters = rng.randint(1, 60)
                kind = "small"
            else:
                n = rng.randint(1_000, 5_000)
                voters = rng.randint(300, 1_500)
                kind = "medium"
            cases.append(Case(f"random_{seed}_{index}_{kind}", make_input(rng, n, voters)))
        return cases

    # ------------------------------------------------------------------ host side of a call

    def _run(self, instance: Instance, input: TallyInput) -> tuple[Tally, int, float]:
        """(tally, fuel of all calls, wall seconds of all calls)."""
        fuel = 0
        wall = 0.0

        def call(name: str, *args) -> int:
            nonlocal fuel, wall
            result = instance.call(name, *args)
            if result.trap is not None:
                raise CaseFailure(f"trapped: {result.trap}")
            fuel += result.fuel_used or 0
            wall += result.wall_s
            if len(result.values) != 1 or not isinstance(result.values[0], int):
                raise CaseFailure(f"{name} returned {result.values!r}, expected one integer")
            return result.values[0]

        n = len(input.votes)
        records = array("I", itertools.chain.from_iterable(input.votes))
        records.extend(itertools.chain.from_iterable(poison_records(input.votes)))
        records_at = call("records_ptr")
        try:
            instance.memory.write_array(records_at, records, "u32")
        except MemoryAccessError as error:
            raise CaseFailure(f"records_ptr() returned {records_at}, where {n} + {POISON_SLOTS} records do not fit: {error}")
        code = call("tally", n, input.quorum, input.num, input.den)
        result_at = call("result_ptr")
        try:
            yes, no, abstain, turnout = instance.memory.read_array(result_at, 4, "i64")
        except MemoryAccessError as error:
            raise CaseFailure(f"result_ptr() returned {result_at}, where 4 x i64 cannot be read: {error}")
        if code < 0:
            what = ERRORS.get(code, f"tally returned the unknown error code {code}")
            raise CaseFailure(
                f"{what} (error {code}); for {input.describe()}: the module wrote yes={yes}, no={no}, "
                f"abstain={abstain}, turnout={turnout}; expected {self.reference(input).describe()}"
            )
        if code not in OUTCOMES:
            raise CaseFailure(f"tally returned {code}, which is neither an outcome (0, 1, 2) nor an error code")
        return Tally(yes, no, abstain, turnout, code), fuel, wall

    def call(self, instance: Instance, input: TallyInput) -> CallOutput:
        tally, fuel, _ = self._run(instance, input)
        return CallOutput(tally, fuel)

    def check_output(self, input: TallyInput, output: Any) -> None:
        expected = self.reference(input)
        if output == expected:
            return
        if not isinstance(output, Tally):
            raise CaseFailure(f"expected {expected.describe()}, got {output!r}")
        wrong = [field for field in Tally._fields if getattr(output, field) != getattr(expected, field)]
        raise CaseFailure(
            f"wrong tally for {input.describe()}: expected {expected.describe()}; got {output.describe()} "
            f"(wrong: {', '.join(wrong)})"
        )

    # ------------------------------------------------------------------ workloads and the objective

    def workloads(self, split: Split) -> list[Workload]:
        if split not in self._workloads:
            self._workloads[split] = [
                Workload(
                    id=workload_id,
                    split=split,
                    origin=f"generated: raft_consensus.workload_input(seed={seed:#x}, count={count}, voters={voters})",
                    seed=seed,
                    input=workload_input(seed, count, voters),
                )
                for workload_id, seed, count, voters in _WORKLOADS[split]
            ]
        return list(self._workloads[split])

    def measure(self, instance: Instance, workload: Workload) -> dict[str, float]:
        input: TallyInput = workload.input
        try:
            tally, fuel, wall = self._run(instance, input)
            self.check_output(input, tally)
        except CaseFailure as failure:
            raise CaseFailure(f"on workload {workload.id}: {failure}") from None
        return {"fuel": fuel, "wall_s": wall, "votes": len(input.votes)}
