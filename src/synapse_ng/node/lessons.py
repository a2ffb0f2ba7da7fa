"""What a new search of a component learns from the network's past upgrades of it (collaboration.outcomes):

    lessons(ledger, component, language) -> Lessons
        .deployed   the block of the newest completed upgrade: the search starts from it, and must beat it
        .banned     the blocks of upgrades the network rolled back: never proposed again
        .history    one line per past upgrade of the component, claim and live effect: for the prompt

Everything comes from the signed messages: every node holds the same, so every island learns the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..collaboration.outcomes import describe
from ..components import CandidateShapeError, split_skeleton
from .ledger import Ledger

MAX_HISTORY = 4  # lines in the prompt: the newest upgrades
MAX_BANNED = 8  # rolled-back blocks measured at the start of a search: the newest


@dataclass
class Lessons:
    deployed: str | None = None
    banned: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)

    def context(self) -> dict[str, str]:
        """For the problem the model reads: what past upgrades of the component claimed and did live."""
        if not self.history:
            return {}
        return {"past upgrades (claim, then live effect; positive is better)": "; ".join(self.history)}


def block_of(source: str) -> str | None:
    """The EVOLVE block of a proposal's source (the whole program), or None when it has none."""
    try:
        return split_skeleton(source)[1].strip("\n") or None
    except CandidateShapeError:
        return None


def lessons(ledger: Ledger, component: str, language: str) -> Lessons:
    """From the signed history alone, so that every island of an evolution learns the same: the deployed
    block is the newest upgrade of the component whose rollout completed (and was not rolled back)."""
    found = Lessons()
    outcomes = [o for o in ledger.outcomes() if o.component == component]
    for outcome in outcomes:
        block = block_of(outcome.source) if outcome.language == language else None
        if outcome.state == "completed" and block:
            found.deployed = block
        if outcome.state == "rolled_back" and block:
            found.banned.append(block)
    found.banned = found.banned[-MAX_BANNED:]
    found.history = [describe(o) for o in outcomes[-MAX_HISTORY:]]
    return found
