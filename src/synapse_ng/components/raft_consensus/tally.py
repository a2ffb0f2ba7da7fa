"""The vote tally in Python: the records, the result, and ``reference_tally``, the oracle.

Governance counts real votes with ``reference_tally`` too, so the rule a node applies and the rule a
candidate is judged against are one function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

MAX_VOTES = 1 << 20
POISON_SLOTS = 64
MAX_WEIGHT = 1 << 20
MAX_THRESHOLD = 65535
U32_MAX = 0xFFFFFFFF
MAX_QUORUM = (1 << 63) - 1
RECORD_BYTES = 16

OUTCOMES = {0: "approved", 1: "rejected", 2: "no quorum"}


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
            raise ValueError(
                f"threshold must satisfy 0 < num <= den <= {MAX_THRESHOLD}, got {self.num}/{self.den}"
            )
        for vote in self.votes:
            if not (
                0 <= vote.voter <= U32_MAX
                and 0 <= vote.seq <= U32_MAX
                and vote.choice in (0, 1, 2)
                and 0 <= vote.weight <= MAX_WEIGHT
            ):
                raise ValueError(f"invalid vote record {vote!r}")

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
