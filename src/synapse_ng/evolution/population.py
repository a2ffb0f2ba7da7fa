"""The population: islands of correct, measured programs, and which of them become parents.

FunSearch's programs database is the model. Each island keeps its best few programs (elites), ordered
by the component's objective; islands evolve apart and every so often each one's best migrates to the
next, so a good idea spreads without one lineage taking over everywhere.

    population.admit(island, attempt)       keep the island's best few, one per measured behaviour
    population.pick_parent(island)          mostly the island's best, sometimes any elite
    population.inspirations(island, parent) the best programs of the other islands, shown to the model
    population.migrate()                    each island's best to the next island
    population.best()                       the best program of all islands
    population.claim(source_hash)           False for a program seen before in this run: never again

Besides its elites, an island remembers its recent correct programs that have constants (`tunable`):
a rule whose threshold sits at a useless value behaves exactly like its parent, so it takes no elite
slot, yet re-tuning it may pay. The population holds `Attempt`s as the store keeps them.
"""

from __future__ import annotations

import random
from collections import deque

from ..models import CodeLanguage
from .attempt import Attempt
from .tuning import can_retune

TUNABLE_POOL = 8  # recent correct programs with constants kept per island


class Population:
    def __init__(
        self,
        islands: int,
        elites: int,
        direction: str,
        language: CodeLanguage,
        rng: random.Random,
        exploit: float,
    ):
        self.elites = elites
        self.direction = direction  # "min" or "max": the component's objective
        self.language = language
        self.rng = rng  # the search's: one seeded sequence of choices for the whole run
        self.exploit = exploit  # the chance to take an island's best as parent, else any elite
        self.islands: list[list[Attempt]] = [[] for _ in range(islands)]
        self.tunable: list[deque[Attempt]] = [deque(maxlen=TUNABLE_POOL) for _ in range(islands)]
        self.baseline: Attempt | None = None
        self.seen: set[str] = set()

    def claim(self, digest: str) -> bool:
        """True the first time a source hash is seen in this run (and from then on it is seen)."""
        if digest in self.seen:
            return False
        self.seen.add(digest)
        return True

    def sorted(self, members: list[Attempt]) -> list[Attempt]:
        return sorted(members, key=_score, reverse=self.direction == "max")

    def seed(self, baseline: Attempt) -> None:
        """The shipped program: the parent of every island until it holds better ones."""
        self.baseline = baseline
        for island in range(len(self.islands)):
            self.admit(island, baseline)

    def admit(self, island: int, member: Attempt) -> None:
        """Keep the island's best few, one per measured behaviour: a block that scores exactly what an
        elite scores on every workload (for a heuristic, almost always the same decisions, e.g. best fit
        rescaled) does not take a second slot, so the slots hold programs that behave differently."""
        members = self.islands[island]
        scores = member.scores
        if any(m.id == member.id or (scores and m.scores == scores) for m in members):
            return
        self.islands[island] = self.sorted(members + [member])[: self.elites]

    def remember_tunable(self, island: int, member: Attempt) -> None:
        if can_retune(member.source, self.language):
            self.tunable[island].append(member)

    def pick_parent(self, island: int) -> Attempt:
        elites = self.islands[island]
        if not elites:  # an island holds at least the baseline once seeded
            if self.baseline is None:
                raise RuntimeError("no parent to pick: seed the population with its baseline first")
            elites = [self.baseline]
        if len(elites) == 1 or self.rng.random() < self.exploit:
            return elites[0]
        return self.rng.choice(elites)

    def inspirations(self, island: int, parent: Attempt) -> list[Attempt]:
        others = [m for i, members in enumerate(self.islands) if i != island for m in members[:1]]
        others += self.islands[island][1:2]
        return [m for m in self.sorted(others) if m.id != parent.id][:2]

    def migrate(self) -> None:
        bests = [members[0] if members else None for members in self.islands]
        for i, best in enumerate(bests):
            if best is None:
                continue
            target = (i + 1) % len(self.islands)
            if all(m.id != best.id for m in self.islands[target]):
                self.admit(target, best)

    def best(self) -> Attempt | None:
        members = [m for island in self.islands for m in island]
        return self.sorted(members)[0] if members else None


def _score(member: Attempt) -> float:
    """The aggregate training objective: every member was measured (only correct attempts are admitted)."""
    if member.score is None:
        raise ValueError(f"attempt {member.id} has no score: only measured attempts join the population")
    return member.score
