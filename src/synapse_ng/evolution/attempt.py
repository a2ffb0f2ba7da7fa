"""One candidate program, from the moment it is proposed to the row the store keeps: an `Attempt`.

    attempt = Attempt(run_id, island, parent_id, operator, language, source=block, source_hash=digest)
    attempt.revised(fixed, operator)      rustc's fixes or a model's repair: a new block, hashed once
    attempt.end(outcome, stage, message)  it stopped early: no code, a failed model call, a duplicate
    attempt.failed(build_failure)         the build refused it
    attempt.judged(evaluation, sha256)    evaluated: its outcome, cases and training figures
    attempt.id = store.add(attempt)       stored as it is; the store reads Attempts back

The proposal (island, parent, operator, who proposed it, tokens, time), the build (outcome, stage,
message, compiler log, time) and the evaluation (verification, metrics, score, improvement) all land
in this one record, so the search, the population, the store and a resumed run speak of the same
thing. A correct attempt is also what the population keeps: `scores` are its per-workload figures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..languages import source_hash
from ..models import CodeLanguage
from ..outcome import Outcome, Stage
from .build import BuildFailure
from .evaluate import Evaluation

BASELINE = "baseline"  # the operator of the shipped block's attempt: the reference, not a generation
TUNE = "tune"  # the operator that re-tunes constants without a model
START = "start"  # a starting block given to the search (not written by the model), judged like any other
MIGRANT = "migrant"  # another island's program, re-measured here before it is admitted


@dataclass
class Attempt:
    run_id: str
    island: int
    parent_id: int | None
    operator: str  # llm-block, llm-edits, tune, baseline, free-form; "+rustfix" and "+repair" when revised
    language: CodeLanguage
    source: str = ""  # the block (for a model answer without code: what went wrong, as before)
    source_hash: str = ""  # languages.source_hash(source): "" when there is no block to deduplicate
    provider: str = "-"  # the model's provider and name; "-" for the tuner and the baseline
    model: str = "-"
    tokens_in: int = 0
    tokens_out: int = 0
    generation: int = 0  # samples the run had spent when this attempt was stored
    generation_s: float = 0.0  # in model calls (the proposal and any repairs)
    status: Outcome | None = None  # how it ended ("status" as stored and printed); None while in flight
    stage: Stage | None = None  # where it stopped
    message: str = ""
    compile_log: str = ""
    verification: dict | None = None  # cases passed and total, and the first failure, once it ran
    metrics: dict | None = None  # per-workload figures and their aggregate, once measured
    score: float | None = None  # the aggregate training objective, when correct
    improvement_pct: float | None = None  # over the baseline, on the training workloads
    wasm_sha256: str | None = None
    compile_s: float = 0.0  # building, with rustc's fixes and the model's repairs
    evaluation_s: float = 0.0
    id: int | None = None  # given by the store
    created_at: str | None = None  # given by the store

    def __post_init__(self) -> None:
        # Rows read back from a store hold plain strings: one type whichever way an attempt was made.
        self.language = CodeLanguage(self.language)
        if self.status is not None:
            self.status = Outcome(self.status)
        if self.stage is not None:
            self.stage = Stage(self.stage)

    @property
    def correct(self) -> bool:
        return self.status is Outcome.CORRECT

    @property
    def scores(self) -> dict[str, float]:
        """The measured training figures per workload ({"train_or bins": 212.4, ...}); empty if unmeasured."""
        metrics = self.metrics or {}
        metric = (metrics.get("aggregate") or {}).get("metric")
        if metric is None:
            return {}
        workloads = metrics.get("workloads", [])
        return {
            f"{w['id']} {metric}": w["candidate"][metric]
            for w in workloads
            if metric in w.get("candidate", {})
        }

    def revised(self, block: str, operator: str) -> Attempt:
        """This attempt for a new block (rustc's fixes, a model's repair), its identity hashed once here."""
        return replace(self, source=block, source_hash=source_hash(block, self.language), operator=operator)

    def end(self, status: Outcome, stage: Stage, message: str = "", log: str = "") -> None:
        self.status, self.stage, self.message, self.compile_log = status, stage, message, log

    def failed(self, failure: BuildFailure) -> None:
        self.end(failure.outcome, failure.stage, failure.message, failure.log)

    def judged(self, evaluation: Evaluation, wasm_sha256: str | None = None) -> None:
        """Everything the evaluation found: its outcome, the cases, and the figures when it was measured."""
        self.end(evaluation.status, evaluation.stage, evaluation.message, evaluation.log)
        self.verification = {
            "first_failure": evaluation.first_failure,
            "cases_passed": evaluation.cases_passed,
            "cases_total": evaluation.cases_total,
        }
        if evaluation.workloads:
            self.metrics = {"workloads": evaluation.workloads, "aggregate": evaluation.aggregate}
        self.score = evaluation.aggregate["candidate"] if evaluation.aggregate else None
        self.improvement_pct = evaluation.improvement_pct
        self.wasm_sha256 = wasm_sha256
        self.evaluation_s = evaluation.wall_s
