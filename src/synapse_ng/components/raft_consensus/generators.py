"""Seeded inputs: vote records, correctness cases (fixed and random) and the measured workloads."""

from __future__ import annotations

import random
from math import gcd

from ..base import Case, Split, Workload
from .tally import MAX_QUORUM, MAX_THRESHOLD, MAX_WEIGHT, U32_MAX, TallyInput, Vote, reference_tally


def make_votes(rng: random.Random, count: int, voters: int, edge_values: bool = False) -> tuple[Vote, ...]:
    """`count` shuffled records from `voters` distinct voters, each voting several times with
    increasing or repeated sequence numbers; the weight usually stays the voter's stake."""
    voters = max(1, min(voters, count)) if count else 0
    distinct: set[int] = set()
    if edge_values and voters:
        distinct.update(rng.sample([0, 1, U32_MAX, U32_MAX - 1], k=min(voters, rng.randint(1, 4))))
    while len(distinct) < voters:
        distinct.add(rng.getrandbits(32))
    ids = sorted(distinct)
    rng.shuffle(ids)
    stakes = {
        voter: rng.choice((MAX_WEIGHT, rng.randint(0, MAX_WEIGHT), rng.randint(1, 1000))) for voter in ids
    }
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


def workloads(split: Split) -> list[Workload]:
    return [
        Workload(
            id=workload_id,
            split=split,
            origin=(
                f"generated: raft_consensus.workload_input(seed={seed:#x}, count={count}, voters={voters})"
            ),
            seed=seed,
            input=workload_input(seed, count, voters),
        )
        for workload_id, seed, count, voters in _WORKLOADS[split]
    ]


def fixed_cases() -> list[Case]:
    """Edge cases: empty, single votes, sequence-number ties, thresholds and quorums on their boundaries."""
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
        case(
            "interleaved_voters",
            [(1, 1, 0, 3), (2, 1, 1, 4), (1, 2, 1, 3), (3, 9, 2, 5), (2, 0, 0, 4), (3, 9, 0, 6)],
        ),
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
        case(
            "many_voters_one_record_each",
            [(i * 2654435761 % (M + 1), 0, i % 3, i % 1000) for i in range(1000)],
        ),
    ]
    return cases


def random_cases(seed: int, count: int) -> list[Case]:
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
