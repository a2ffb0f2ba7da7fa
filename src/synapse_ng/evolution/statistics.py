"""The seed's engine statistics, computed from stored attempts, so they survive restarts.

    engine_statistics(generations, best_improvement_per_component) -> dict    the seed's keys

A generation is any stored attempt except the baseline's. A compilation succeeded when the attempt's
outcome shows a compiler produced a module (`outcome.built_a_module`: compiled, correct, incorrect,
time limit, or a module the static checks refused); it failed when the outcome is compile_failed.
Attempts that never reached the compiler (no code, duplicates, shape or policy rejections) count as
neither. What counts is decided here, from the outcome vocabulary, not in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ..outcome import Outcome, Stage, built_a_module
from .attempt import MIGRANT


class Generation(NamedTuple):
    """The columns of one stored attempt that the statistics read."""

    status: str
    stage: str
    generation_s: float
    compile_s: float
    improvement_pct: float | None
    operator: str


def engine_statistics(generations: Iterable[Generation], best_improvement_per_component: dict) -> dict:
    total = compiled = failed = 0
    generation_s: list[float] = []
    compile_s: list[float] = []
    training: list[float] = []
    # Other islands' programs (a collaborative evolution), by what the re-measurement here found.
    migrants = {"admitted": 0, "misreported": 0, "dropped": 0}
    banned = 0
    for row in generations:
        total += 1
        generation_s.append(row.generation_s)
        outcome = Outcome(row.status)
        built = built_a_module(outcome, Stage(row.stage))
        compiled += built
        failed += outcome is Outcome.COMPILE_FAILED
        if built or outcome is Outcome.COMPILE_FAILED:
            compile_s.append(row.compile_s)
        # The best measured so far, on the training workloads only (held-out results are in
        # best_improvement_per_component): how a running search is doing.
        if outcome is Outcome.CORRECT and row.improvement_pct is not None:
            training.append(row.improvement_pct)
        banned += outcome is Outcome.BANNED
        if row.operator == MIGRANT:
            kind = {Outcome.CORRECT: "admitted", Outcome.MISREPORTED: "misreported"}.get(outcome, "dropped")
            migrants[kind] += 1
    return {
        "best_training_improvement_pct": max(training) if training else None,
        "total_generations": total,
        "successful_compilations": compiled,
        "failed_compilations": failed,
        "success_rate": compiled / (compiled + failed) if compiled + failed else 0.0,
        "avg_generation_time_seconds": _mean(generation_s),
        "avg_compilation_time_seconds": _mean(compile_s),
        # Sums beside the seed's means, so that a monitor can add runs up (Prometheus summaries).
        "total_generation_time_seconds": sum(generation_s),
        "total_compilation_time_seconds": sum(compile_s),
        "best_improvement_per_component": best_improvement_per_component,
        "migrants": migrants,
        "banned_as_rolled_back": banned,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
