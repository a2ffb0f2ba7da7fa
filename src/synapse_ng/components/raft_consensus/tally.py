"""The vote tally in Python: the records, the result, and ``reference_tally``, the oracle.

Governance counts real votes with ``reference_tally`` too, so the rule a node applies and the rule a
candidate is judged against are one function.
"""

from __future__ import annotations

import array
import itertools
import sys
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_VOTES = 1 << 20
POISON_SLOTS = 64
MAX_WEIGHT = 1 << 20
MAX_THRESHOLD = 65535
U32_MAX = 0xFFFFFFFF
MAX_QUORUM = (1 << 63) - 1
RECORD_BYTES = 16

OUTCOMES = {0: "approved", 1: "rejected", 2: "no quorum"}
U32_CODE = next(code for code in "ILH" if array.array(code).itemsize == 4)  # "I" wherever Python runs


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
    # The votes as the module reads them (4 x u32 little-endian, RECORD_BYTES each), packed while they are
    # checked, and the highest voter id (-1 for none): a tally then writes bytes it already has.
    records: bytes = field(init=False, compare=False)
    highest_voter: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.votes) > MAX_VOTES:
            raise ValueError(f"at most {MAX_VOTES} votes fit the module's buffer, got {len(self.votes)}")
        if not 0 <= self.quorum <= MAX_QUORUM:
            raise ValueError(f"quorum must be in 0..=2^63-1, got {self.quorum}")
        if not 0 < self.num <= self.den <= MAX_THRESHOLD:
            raise ValueError(
                f"threshold must satisfy 0 < num <= den <= {MAX_THRESHOLD}, got {self.num}/{self.den}"
            )
        records, highest_voter = _packed(self.votes)
        object.__setattr__(self, "records", records)
        object.__setattr__(self, "highest_voter", highest_voter)

    def describe(self) -> str:
        voters = len({vote.voter for vote in self.votes})
        return (
            f"{len(self.votes)} votes from {voters} voters, quorum {self.quorum}, "
            f"threshold {self.num}/{self.den}"
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"({v.voter}, {v.seq}, {v.choice}, {v.weight})" for v in self.votes[:12])
        more = f", ... {len(self.votes) - 12} more" if len(self.votes) > 12 else ""
        return (
            f"TallyInput(quorum={self.quorum}, threshold={self.num}/{self.den}, "
            f"{len(self.votes)} votes (voter, seq, choice, weight): [{shown}{more}])"
        )


def _packed(votes: tuple[Vote, ...]) -> tuple[bytes, int]:
    """(the records packed, the highest voter), every field checked on the way. The packing checks in C
    what a loop in Python checked vote by vote at the cost of a whole Python tally: an array of u32 refuses
    a negative, too large or non-integer field; then two maxima bound the choices and the weights."""
    try:
        fields = array.array(U32_CODE, itertools.chain.from_iterable(votes))
    except (OverflowError, TypeError):
        fields = None
    if (
        fields is None
        or len(fields) != 4 * len(votes)
        or (votes and (max(fields[2::4]) > 2 or max(fields[3::4]) > MAX_WEIGHT))
    ):
        for vote in votes:  # the slow way, only to name the first bad record
            if not (
                isinstance(vote, tuple)
                and len(vote) == 4
                and all(isinstance(value, int) for value in vote)
                and 0 <= vote.voter <= U32_MAX
                and 0 <= vote.seq <= U32_MAX
                and vote.choice in (0, 1, 2)
                and 0 <= vote.weight <= MAX_WEIGHT
            ):
                raise ValueError(f"invalid vote record {vote!r}")
        raise ValueError("invalid vote records: each is 4 integers (voter, seq, choice, weight)")
    highest_voter = max(fields[0::4], default=-1)
    if sys.byteorder == "big":
        fields.byteswap()
    return fields.tobytes(), highest_voter


def counted_votes(input: TallyInput) -> dict[int, Vote]:
    """Per voter the record that counts: the highest seq, the last in input order among equal ones."""
    counted: dict[int, Vote] = {}
    for vote in input.votes:
        best = counted.get(vote.voter)
        if best is None or vote.seq >= best.seq:  # >=: the last of equal highest seqs wins
            counted[vote.voter] = vote
    return counted


def reference_tally(input: TallyInput) -> Tally:
    """The oracle: exactly the semantics in the module docstring."""
    totals = [0, 0, 0]
    for vote in counted_votes(input).values():
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
