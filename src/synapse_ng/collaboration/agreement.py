"""What every island derives the same way from the same signed messages: who searches an issue, who
proposes, and which program wins.

    island_members(issue_key, members, count)  the islands, in rank order: the first is the designated node
    choose_winner(finals, direction)            the best final whose claim its receiver reproduced

Ranks come from sha256(issue_key + member): no one chooses them, and they differ from issue to issue, so
the same node is not always the one whose CPU the network spends first. The first island proposes the
winner; the next ones take over in rank order when no proposal comes (node/islands.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass


def island_members(issue_key: str, members: Iterable[str], count: int) -> list[str]:
    ranked = sorted(members, key=lambda m: hashlib.sha256((issue_key + m).encode()).hexdigest())
    return ranked[: max(1, count)]


@dataclass(frozen=True)
class Final:
    """An island's last word: its best program, what it claimed for it and what the receiver measured."""

    author: str
    source_hash: str
    claimed: float
    measured: float | None  # None: it did not build, was wrong, or is not measured yet
    shown: bool = False  # its training gain over the baseline passed the significance test here

    @property
    def reproduced(self) -> bool:
        return self.measured is not None and same_score(self.claimed, self.measured)

    @property
    def eligible(self) -> bool:
        return self.reproduced and self.shown


def same_score(claimed: float, measured: float) -> bool:
    """A claim reproduces when the receiver measures the same figure. The measurements are deterministic
    (fuel, bins, a seeded simulation), so only the last bits of a float may differ."""
    return abs(claimed - measured) <= 1e-9 * max(1.0, abs(claimed), abs(measured))


def choose_winner(finals: Iterable[Final], direction: str) -> Final | None:
    """The best final that reproduced with a gain shown, by measured score, ties broken by the smaller
    source hash, then author: the same on every node that holds the same finals, in any order."""
    sign = 1.0 if direction == "min" else -1.0
    honest = [f for f in finals if f.eligible]
    if not honest:
        return None
    return min(honest, key=lambda f: (sign * f.measured, f.source_hash, f.author))  # type: ignore[operator]
