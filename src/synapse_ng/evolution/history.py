"""A stored run as a person reads it afterwards: how its best score moved, and its best block against the
baseline's. `synapse-ng runs show` and the node's dashboard both read runs through here.

    best_so_far(run, attempts) -> [Point]     each time the best training score improved, from the start
    run_summary(store, run_id) -> RunSummary  the run, its baseline, best candidate, held-out result, curve
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from .attempt import BASELINE, Attempt
from .store import ResultRow, RunRow, Store


@dataclass(frozen=True)
class Point:
    minutes: float  # since the run was created
    score: float  # the best training score so far (the baseline's at first)
    candidate_id: int


def best_so_far(run: RunRow, attempts: list[Attempt]) -> list[Point]:
    """One point each time a correct attempt beat every earlier one (the baseline is the first), in the
    order the store kept them; "better" is the run's direction (min: lower scores are better)."""
    started = _time(run.created_at)
    points: list[Point] = []
    for attempt in attempts:
        if not attempt.correct or attempt.score is None or attempt.id is None:
            continue
        if points and not _better(attempt.score, points[-1].score, run.direction):
            continue
        minutes = (_time(attempt.created_at or run.created_at) - started).total_seconds() / 60
        points.append(Point(round(max(0.0, minutes), 4), attempt.score, attempt.id))
    return points


@dataclass(frozen=True)
class RunSummary:
    run: RunRow
    baseline: Attempt | None
    best: Attempt | None  # the run's recorded best candidate
    result: ResultRow | None  # its held-out result, when the run ended with one
    curve: list[Point]
    outcomes: dict[str, int]  # how many attempts ended each way

    @property
    def diff(self) -> str:
        """The best block against the baseline's, as a unified diff ("" when there is no best)."""
        if self.best is None or self.baseline is None:
            return ""
        lines = difflib.unified_diff(
            self.baseline.source.splitlines(keepends=True),
            self.best.source.splitlines(keepends=True),
            "baseline",
            f"candidate {self.best.id}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def run_summary(store: Store, run_id: str) -> RunSummary:
    run = store.get_run(run_id)
    attempts = store.candidates(run_id)
    baseline = next((a for a in attempts if a.operator == BASELINE), None)
    best = next((a for a in attempts if a.id == run.best_candidate_id), None)
    result = next((r for r in reversed(store.results()) if r.run_id == run_id), None)
    outcomes: dict[str, int] = {}
    for attempt in attempts:
        if attempt.operator != BASELINE and attempt.status is not None:
            outcomes[attempt.status.value] = outcomes.get(attempt.status.value, 0) + 1
    return RunSummary(run, baseline, best, result, best_so_far(run, attempts), outcomes)


def _better(score: float, than: float, direction: str) -> bool:
    return score < than if direction == "min" else score > than


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
