"""The search's door to the other islands of a collaborative evolution (the node's side is
node/islands.py). A search alone uses `Alone`: no one to send to, nothing comes in.

    exchange.incoming() -> [Migrant]          what other islands sent since the last call
    exchange.offer(attempt, lineage)          this island found a better program: the exchange may send it
    exchange.judged(migrant, verdict, detail) what the re-measurement found: admitted, dropped, misreport
    await exchange.finals(own, lineage)       sign this island's last word, wait for the others'
    exchange.decided(winner, finals)          the winner every island derives from the same finals
    await exchange.should_propose(winner)     this island proposes it (the designated one, or a takeover)

A migrant is never taken on its sender's word: the search builds it, runs the correctness cascade and
the training workloads itself, and admits it only when the figures it measured are those claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..collaboration.agreement import Final, same_score


@dataclass(frozen=True)
class Migrant:
    message_id: str
    sender: str  # the node id that signed it
    source: str
    source_hash: str  # as claimed; the search hashes the source itself
    lineage: tuple[str, ...]  # the source hashes it descends from, newest first
    score: float  # the training objective claimed
    scores: dict[str, float] = field(default_factory=dict)  # per training workload, as claimed
    final: bool = False


def misreport(migrant: Migrant, score: float | None, scores: dict[str, float]) -> str | None:
    """How the figures measured here differ from the claim, or None when they reproduce."""
    if score is None:
        return "it measured no score here"
    if not same_score(migrant.score, score):
        return f"it claimed a training score of {migrant.score:g}, measured here {score:g}"
    for name, claimed in sorted(migrant.scores.items()):
        measured = scores.get(name)
        if measured is None or not same_score(claimed, measured):
            return f"it claimed {claimed:g} on {name}, measured here {measured}"
    if set(scores) != set(migrant.scores):
        return f"it claimed figures for {len(migrant.scores)} workloads, {len(scores)} are measured here"
    return None


class Alone:
    """No other islands: the search runs as it always did."""

    collaborative = False

    def incoming(self) -> list[Migrant]:
        return []

    def offer(self, attempt, lineage: list[str]) -> None:
        pass

    def judged(self, migrant: Migrant, verdict: str, detail: str) -> None:
        pass

    async def finals(self, own, lineage: list[str]) -> list[Migrant]:
        return []

    def decided(self, winner: Final | None, finals: list[Final]) -> None:
        pass

    async def should_propose(self, winner: Final) -> bool:
        return True
