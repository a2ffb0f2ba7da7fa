"""What a new search of a component learns from the network's past upgrades of it (collaboration.outcomes):

    lessons(ledger, runtime, component) -> Lessons
        .deployed   the block this node runs now, if it is an upgrade: the search starts from it
        .banned     the blocks of upgrades the network rolled back: never proposed again
        .history    one line per past upgrade of the component, claim and live effect: for the prompt

Everything comes from the signed messages (every node holds the same) and this node's live version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..collaboration.outcomes import describe
from ..components import CandidateShapeError, split_skeleton
from .ledger import Ledger
from .runtime import ComponentRuntime

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


def lessons(ledger: Ledger, runtime: ComponentRuntime | None, component: str) -> Lessons:
    found = Lessons()
    outcomes = [o for o in ledger.outcomes() if o.component == component]
    active = runtime.active if runtime is not None else None
    for outcome in outcomes:
        block = block_of(outcome.source)
        if outcome.proposal_id == active and block:
            found.deployed = block
        if outcome.state == "rolled_back" and block:
            found.banned.append(block)
    found.banned = found.banned[-MAX_BANNED:]
    found.history = [describe(o) for o in outcomes[-MAX_HISTORY:]]
    return found
