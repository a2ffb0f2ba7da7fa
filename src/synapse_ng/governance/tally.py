"""Closing a proposal: its votes become a raft_consensus input, and the tally decides.

The network's vote-counting rule is the raft_consensus component's semantics, not a copy of them: one
vote per identity, the highest seq counts, the last one in input order among equal seqs. So a node
tallies with whatever raft_consensus it runs (the shipped baseline or an approved evolved version),
and every node builds the very same input from the very same set of signed votes:

- only votes by members, created at or before the deadline, count;
- the input order is (created_at, message id): the same on every node whatever order gossip used;
- voter = the author's index in sorted(members);
- seq: our seqs are time_ns (64-bit), raft's are u32, so each voter's seqs are replaced by their dense
  ranks (0, 1, 2, ... in increasing order), which keeps the order and the ties that decide;
- weight 1 per identity; quorum = ceil(quorum fraction x members); threshold num/den as proposed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..components.raft_consensus.tally import (
    OUTCOMES,
    Tally,
    TallyInput,
    Vote,
    counted_votes,
    reference_tally,
)
from ..models import SignedMessage
from .proposals import CHOICES, ProposalError, validate_proposal_body, validate_vote_body

logger = logging.getLogger(__name__)

STATUS_OPEN = "open"
CHOICE_NAMES = {code: name for name, code in CHOICES.items()}


# What a tally needs of a vote: a signed envelope has all of it.
VoteMessage = SignedMessage


@dataclass(frozen=True)
class Outcome:
    status: str  # "open" | "approved" | "rejected" | "no quorum"
    yes: int
    no: int
    abstain: int
    turnout: int
    quorum_needed: int
    threshold: tuple[int, int]
    counted: dict[str, str]  # voter id -> the choice that counts

    @property
    def closed(self) -> bool:
        return self.status != STATUS_OPEN

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "yes": self.yes,
            "no": self.no,
            "abstain": self.abstain,
            "turnout": self.turnout,
            "quorum_needed": self.quorum_needed,
            "threshold": list(self.threshold),
            "counted": dict(self.counted),
        }


def quorum_count(fraction: float, members: int) -> int:
    """ceil(fraction x members), with the fraction read as the decimal it was written as: 0.1 x 10 is 1
    (binary floating point would make it 1.0000000000000002 and ask for 2)."""
    return math.ceil(Fraction(repr(float(fraction))) * members)


def _eligible(
    proposal_body: dict, votes: Iterable[VoteMessage], members: Iterable[str]
) -> tuple[list[str], list[VoteMessage]]:
    """Sorted members, and the votes that count: by a member, in time, well-formed;
    in (created_at, id) order."""
    validate_proposal_body(proposal_body)
    roster = sorted(set(members))
    allowed = set(roster)
    deadline = proposal_body["deadline"]
    kept = []
    for vote in votes:
        if vote.author not in allowed or not vote.created_at <= deadline:
            continue
        try:
            validate_vote_body(vote.body)
        except ProposalError as error:
            logger.debug("ignoring malformed vote %s: %s", vote.id, error)
            continue
        kept.append(vote)
    kept.sort(key=lambda v: (v.created_at, v.id))
    return roster, kept


def _records(roster: list[str], votes: list[VoteMessage]) -> tuple[Vote, ...]:
    index = {member: i for i, member in enumerate(roster)}
    seqs: dict[str, set[int]] = {}
    for vote in votes:
        seqs.setdefault(vote.author, set()).add(vote.body["seq"])
    ranks = {
        author: {seq: rank for rank, seq in enumerate(sorted(values))} for author, values in seqs.items()
    }
    return tuple(
        Vote(index[v.author], ranks[v.author][v.body["seq"]], CHOICES[v.body["choice"]], 1) for v in votes
    )


def _input(proposal_body: dict, roster: list[str], kept: list[VoteMessage]) -> TallyInput:
    num, den = proposal_body["threshold"]
    return TallyInput(_records(roster, kept), quorum_count(proposal_body["quorum"], len(roster)), num, den)


def tally_input(proposal_body: dict, votes: Iterable[VoteMessage], members: Iterable[str]) -> TallyInput:
    """The raft_consensus input for this proposal (see the module docstring for every rule)."""
    return _input(proposal_body, *_eligible(proposal_body, votes, members))


def _counted(roster: list[str], input: TallyInput) -> dict[str, str]:
    """Per voter the choice of the record that counts, by name, as raft_consensus defines it."""
    counted = counted_votes(input)
    return {roster[voter]: CHOICE_NAMES[vote.choice] for voter, vote in sorted(counted.items())}


def decide(
    proposal_body: dict,
    votes: Iterable[VoteMessage],
    members: Iterable[str],
    *,
    now: float,
    grace_s: float = 1.0,
    tally_fn: Callable[[TallyInput], Any] = reference_tally,
) -> Outcome:
    """The proposal's state at `now`: "open" until deadline + grace_s (with the figures so far, from the
    reference rule), then the outcome of tally_fn on the votes, e.g. the node's live raft_consensus.

    Exceptions of tally_fn (a trapping module) propagate; a result that is not a tally raises ValueError."""
    roster, kept = _eligible(proposal_body, votes, members)
    input = _input(proposal_body, roster, kept)
    counted = _counted(roster, input)
    is_open = now <= proposal_body["deadline"] + grace_s
    tally = reference_tally(input) if is_open else tally_fn(input)
    if isinstance(tally, tuple) and not isinstance(tally, Tally) and len(tally) == len(Tally._fields):
        tally = Tally(*tally)
    if not isinstance(tally, Tally) or tally.outcome not in OUTCOMES:
        raise ValueError(f"the tally function returned {tally!r}, expected a Tally with outcome 0, 1 or 2")
    return Outcome(
        status=STATUS_OPEN if is_open else OUTCOMES[tally.outcome],
        yes=tally.yes,
        no=tally.no,
        abstain=tally.abstain,
        turnout=tally.turnout,
        quorum_needed=input.quorum,
        threshold=(input.num, input.den),
        counted=counted,
    )
