"""A stored run as a person reads it afterwards: how its best score moved, and its best block against the
baseline's. `synapse-ng runs show` and the node's dashboard both read runs through here.

    best_so_far(run, attempts) -> [Point]     each time the best training score improved, from the start
    run_summary(store, run_id) -> RunSummary  the run, its attempts, baseline, best, held-out result; its
                                              curve, outcome counts, diff and held-out figures derived
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

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
    points: list[Point] = []
    for attempt in attempts:
        if not attempt.correct or attempt.score is None or attempt.id is None:
            continue
        if points and not _better(attempt.score, points[-1].score, run.direction):
            continue
        points.append(Point(minutes_since(run, attempt), attempt.score, attempt.id))
    return points


def minutes_since(run: RunRow, attempt: Attempt) -> float:
    """When the store kept the attempt, in minutes since the run was created (0 if it has no time)."""
    at = attempt.created_at or run.created_at
    minutes = (datetime.fromisoformat(at) - datetime.fromisoformat(run.created_at)).total_seconds() / 60
    return round(max(0.0, minutes), 4)


@dataclass(frozen=True)
class RunSummary:
    run: RunRow
    attempts: list[Attempt]  # every attempt of the run, in the order the store kept them
    baseline: Attempt | None
    best: Attempt | None  # the run's recorded best candidate
    result: ResultRow | None  # its held-out result, when the run ended with one

    @cached_property
    def curve(self) -> list[Point]:
        return best_so_far(self.run, self.attempts)

    @cached_property
    def outcomes(self) -> dict[str, int]:
        """How many attempts (the baseline left out) ended each way."""
        counts: dict[str, int] = {}
        for attempt in self.attempts:
            if attempt.operator != BASELINE and attempt.status is not None:
                counts[attempt.status.value] = counts.get(attempt.status.value, 0) + 1
        return counts

    def heldout(self) -> dict | None:
        """The held-out result's figures from its evidence: the aggregate, and per workload the objective
        of the baseline and of the candidate; None when the run ended without one."""
        if self.result is None:
            return None
        evidence = self.result.evidence
        metric = (evidence.get("aggregate") or {}).get("metric")
        return {
            "improvement_pct": self.result.improvement_pct,
            "wasm_sha256": self.result.wasm_sha256,
            "aggregate": evidence.get("aggregate"),
            "workloads": [
                {
                    "name": workload.get("id"),
                    "baseline": (workload.get("baseline") or {}).get(metric),
                    "candidate": (workload.get("candidate") or {}).get(metric),
                    "improvement_pct": workload.get("improvement_pct"),
                }
                for workload in evidence.get("workloads") or []
            ],
        }

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
    return RunSummary(run, attempts, baseline, best, result)


def _better(score: float, than: float, direction: str) -> bool:
    return score < than if direction == "min" else score > than
