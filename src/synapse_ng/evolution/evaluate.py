"""Judge a candidate: correct first, then measured against the baseline on the same workloads, in one run.

    evaluate(component, candidate, language, split) -> Evaluation

1. Build: assemble the block into the skeleton, policy, compile, static checks (`build.py`).
2. In a worker process with a time limit that kills it (a crash or a hang of the runtime cannot take the
   caller down): the correctness cascade — fixed edge cases, then seeded random cases, stopping at the
   first failure — then every workload of the split on the candidate *and* on the baseline.
3. The figures: per-workload metrics of both, the aggregate objective, and the improvement in percent
   (the mean of the per-workload improvements, so a big workload does not drown a small one), wrapped
   in an evidence record that any node can re-run (`evidence.py`).

How it ended is an `Outcome`, where it stopped a `Stage` (`synapse_ng.outcome`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..components import Component, Split, get_component
from ..models import CodeLanguage
from ..outcome import Outcome, Stage
from ..toolchain import CompileOptions
from ..workers import run_in_worker
from .build import BuildFailure, BuiltModule, build_baseline, build_candidate
from .evidence import build_evidence
from .measure import aggregate, component_ref, measure_job

DEFAULT_RANDOM_CASES = 40
DEFAULT_CASE_SEED = 20261126
DEFAULT_TIME_LIMIT_S = 600.0


@dataclass
class Evaluation:
    component: str
    status: Outcome  # how it ended ("status" is the name printed in JSON)
    stage: Stage  # where it stopped
    message: str = ""
    log: str = ""
    first_failure: dict | None = None
    cases_passed: int = 0
    cases_total: int = 0
    workloads: list[dict] = field(default_factory=list)
    candidate: dict | None = None  # sha256, size, language, compiler
    baseline: dict | None = None
    aggregate: dict | None = None  # candidate, baseline, improvement_pct
    evidence: dict | None = None
    wall_s: float = 0.0
    evaluated_by: str = "local"  # where the measuring ran ("local", or the Ray node and worker)

    @property
    def correct(self) -> bool:
        return self.status is Outcome.CORRECT

    @property
    def improvement_pct(self) -> float | None:
        return self.aggregate["improvement_pct"] if self.aggregate else None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def evaluate(
    component: Component | str,
    candidate: str | bytes,
    language: CodeLanguage = CodeLanguage.RUST,
    split: Split | str = Split.HELDOUT,
    *,
    case_seed: int = DEFAULT_CASE_SEED,
    random_cases: int = DEFAULT_RANDOM_CASES,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    compile_options: CompileOptions | None = None,
    built: BuiltModule | None = None,
) -> Evaluation:
    component = get_component(component) if isinstance(component, str) else component
    splits = _splits(split)
    started = time.monotonic()
    if built is None:
        outcome = build_candidate(component, candidate, language, compile_options)
        if isinstance(outcome, BuildFailure):
            return failed_build(component, outcome)
        built = outcome
    baseline = build_baseline(component)
    job = {
        "component": component_ref(component),
        "candidate": built.wasm,
        "baseline": baseline.wasm,
        "splits": [s.value for s in splits],
        "case_seed": case_seed,
        "random_cases": random_cases,
    }
    result = run_in_worker(measure_job, job, time_limit_s)
    evaluation = Evaluation(
        component.name,
        Outcome.INCORRECT,
        Stage.CASES,
        candidate=built.describe(),
        baseline=baseline.describe(),
    )
    if result is None:
        evaluation.status, evaluation.stage = Outcome.TIME_LIMIT, Stage.TIME_LIMIT
        evaluation.message = f"evaluation still running after {time_limit_s:g} s; the worker was killed"
    elif "error" in result:
        evaluation.stage, evaluation.message, evaluation.log = (
            Stage.ERROR,
            "the evaluation worker failed",
            result["error"],
        )
    else:
        evaluation.cases_passed, evaluation.cases_total = result["cases_passed"], result["cases_total"]
        evaluation.first_failure = result["first_failure"]
        evaluation.workloads = result["workloads"]
        if evaluation.first_failure:
            evaluation.stage = Stage(evaluation.first_failure["stage"])
            evaluation.message = evaluation.first_failure["message"]
        else:
            evaluation.status, evaluation.stage = Outcome.CORRECT, Stage.DONE
            evaluation.aggregate = aggregate(component, evaluation.workloads)
            evaluation.evidence = build_evidence(
                component,
                built,
                baseline,
                evaluation.workloads,
                evaluation.aggregate,
                case_seed,
                random_cases,
                evaluation.cases_total,
            )
    evaluation.wall_s = time.monotonic() - started
    return evaluation


def failed_build(component: Component, failure: BuildFailure) -> Evaluation:
    return Evaluation(component.name, failure.outcome, failure.stage, failure.message, failure.log)


def _splits(split: Split | str) -> list[Split]:
    if isinstance(split, Split):
        return [split]
    if split == "all":
        return [Split.TRAIN, Split.HELDOUT]
    try:
        return [Split(split)]
    except ValueError:
        raise ValueError(f"unknown workload split {split!r}; use train, heldout or all") from None
