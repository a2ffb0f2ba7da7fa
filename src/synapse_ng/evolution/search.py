"""The search: islands of measured candidates, evolved by a language model and a constant-tuning operator.

Each island keeps its best few correct programs (elites). A sample picks an island, a parent from its
elites (mostly the best, sometimes any, so the search keeps exploring), and either asks the model for a
better block (the parent, its measured scores, good programs from other islands, the last failure and,
in turn, one of the component's directions go into the prompt) or re-tunes the constants of an elite
without a model. An island keeps one program per measured behaviour, so its slots are not taken by
rescalings of the same rule. A block that does not compile first gets rustc's own machine-applicable
suggestions applied (`gap > 0` on an f64 becomes `gap > 0.0`); what still fails goes back
to the model for a bounded number of repairs. A block whose normalised source was seen before is never
evaluated again. Candidates are measured on *training* workloads only; every few samples the best
program of each island migrates to the next. At the end the best training improvement is re-measured on
*held-out* workloads, and only a held-out improvement counts.

Every candidate is written to the store as it finishes, so a killed run resumes where it stopped
(`resume_run_id`), losing at most the samples that were in flight. Model calls and evaluations overlap:
several samples run concurrently, each evaluation in its own worker process. A model that answers one call
at a time (the embedded one) is never queued for: while it is busy, the other workers tune.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..components import Component, Split
from ..models import CodeLanguage
from ..toolchain import CompileOptions
from .build import BuildFailure, BuiltModule, autofix_block, build_candidate
from .edits import extract_candidate, source_hash
from .evaluate import Evaluation, Status, evaluate
from .executors import LocalExecutor
from .prompts import ParentInfo, build_messages, repair_messages
from .store import Store
from .tuning import can_retune, retune

logger = logging.getLogger(__name__)

AUTOFIX_ROUNDS = 3

MAX_CONSECUTIVE_LLM_ERRORS = 3
MODEL_FAILED = "the model call failed"
WIDE_JUMP = 10.0
WIDE_JUMP_CHANCE = 1 / 3
# From a plateau (a program that decides exactly like the baseline) the constants are far from where
# they matter (a small model writes thresholds like 0.005 where 20 is needed): jump across decades.
PLATEAU_JUMP = 1000.0
TUNABLE_POOL = 8


@dataclass(frozen=True)
class Budget:
    samples: int = 24  # candidates proposed (by the model or the tuner), the baseline not counted
    minutes: float | None = None
    tokens: int | None = None  # prompt + completion tokens


@dataclass(frozen=True)
class SearchConfig:
    islands: int = 2
    elites: int = 4  # kept per island
    migration_every: int = 8  # samples
    repair_tries: int = 1
    tune_share: float = 0.4  # of samples, when a program has constants to tune (cheap: no model call); all
    # samples while a one-call-at-a-time model is busy
    exploit: float = 0.7  # chance to take an island's best as parent, else a random elite
    concurrency: int = 2  # samples in flight (model calls overlap evaluations)
    language: CodeLanguage = CodeLanguage.RUST
    seed: int = 0
    max_new_tokens: int = 900
    temperature: float = 0.8
    random_cases: int = 20
    eval_time_limit_s: float = 300.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["language"] = self.language.value
        return data


@dataclass
class Member:
    """A correct, measured program in an island."""

    candidate_id: int
    block: str
    score: float  # the aggregate training objective
    improvement_pct: float  # over the baseline, training workloads
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Progress:
    samples: int = 0
    compiled: int = 0
    compile_failed: int = 0
    correct: int = 0
    duplicates: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    best_improvement_pct: float = 0.0
    first_improvement_s: float | None = None  # seconds from the start to the first training improvement
    elapsed_s: float = 0.0


@dataclass
class SearchResult:
    run_id: str
    component: str
    baseline_score: float | None
    best: Member | None
    heldout: Evaluation | None  # the best candidate re-measured on held-out workloads
    built: BuiltModule | None
    improved: bool  # a held-out improvement, with evidence
    reason: str
    progress: Progress
    model_gave_up: bool = False  # the run ended because the model kept failing (not for lack of ideas)


class EvolutionSearch:
    def __init__(
        self,
        component: Component,
        provider,
        store: Store,
        *,
        problem: str,
        config: SearchConfig = SearchConfig(),
        budget: Budget = Budget(),
        compile_options: CompileOptions | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        executor=None,
    ):
        self.component = component
        self.provider = provider
        self.store = store
        self.problem = problem
        self.config = config
        self.budget = budget
        self.compile_options = compile_options
        self.on_progress = on_progress
        self.executor = executor or LocalExecutor()
        self.rng = random.Random(config.seed)
        self.islands: list[list[Member]] = [[] for _ in range(config.islands)]
        # Recent correct programs with constants, elite or not: a rule whose threshold sits at a useless
        # value behaves exactly like its parent (and takes no elite slot), yet re-tuning it may pay.
        self.tunable: list[deque[Member]] = [deque(maxlen=TUNABLE_POOL) for _ in range(config.islands)]
        self.last_error: list[str | None] = [None] * config.islands
        self.seen: set[str] = set()
        self.progress = Progress()
        self.baseline: Member | None = None
        self._started = time.monotonic()
        self._elapsed_before = 0.0
        self._llm_errors = 0
        self._stop_reason: str | None = None
        self.run_id = ""

    # ------------------------------------------------------------------------------------ the run

    async def run(self, resume_run_id: str | None = None) -> SearchResult:
        if resume_run_id:
            self._resume(resume_run_id)
        else:
            self.run_id = self.store.create_run(
                self.component.name,
                getattr(self.provider, "name", "?"),
                getattr(self.provider, "model", "?"),
                self.config.seed,
                {"config": self.config.to_dict(), "budget": asdict(self.budget), "problem": self.problem},
                direction=self.component.objective.direction,
            )
        logger.info("run %s: evolving %s with %s", self.run_id, self.component.name, getattr(self.provider, "model", "?"))
        if self.baseline is None:
            await self._measure_baseline()
        if self.baseline is None:
            return self._finish(None, None, None, "the baseline does not pass its own evaluation here")
        workers = [asyncio.create_task(self._worker(slot)) for slot in range(max(1, self.config.concurrency))]
        await asyncio.gather(*workers)
        best = self._best()
        if best is None or best.improvement_pct <= 0:
            reason = self._stop_reason or "no candidate beat the baseline on the training workloads"
            return self._finish(best, None, None, reason)
        built = await asyncio.to_thread(build_candidate, self.component, best.block, self.config.language, self.compile_options)
        if isinstance(built, BuildFailure):
            return self._finish(best, None, None, f"the best candidate no longer builds: {built.message}")
        heldout = await asyncio.to_thread(
            evaluate,
            self.component,
            best.block,
            self.config.language,
            Split.HELDOUT,
            random_cases=self.config.random_cases,
            time_limit_s=self.config.eval_time_limit_s,
            built=built,
        )
        if not heldout.correct:
            return self._finish(best, heldout, built, f"the best candidate failed on held-out work: {heldout.message}")
        if heldout.improvement_pct is None or heldout.improvement_pct <= 0:
            return self._finish(
                best, heldout, built, f"the best training candidate does not improve held-out work ({heldout.improvement_pct:.3f} %)"
            )
        sha = self.store.put_artifact(built.wasm)
        self.store.record_result(self.run_id, best.candidate_id, self.component.name, heldout.improvement_pct, heldout.evidence, sha)
        return self._finish(best, heldout, built, f"held-out improvement of {heldout.improvement_pct:.3f} %", improved=True)

    def _finish(self, best, heldout, built, reason: str, improved: bool = False) -> SearchResult:
        self._save_budget()
        status = "improved" if improved else "no_improvement"
        self.store.finish_run(self.run_id, status, reason, best.candidate_id if best else None)
        logger.info("run %s finished: %s", self.run_id, reason)
        baseline_score = self.baseline.score if self.baseline else None
        gave_up = self._llm_errors >= MAX_CONSECUTIVE_LLM_ERRORS
        return SearchResult(self.run_id, self.component.name, baseline_score, best, heldout, built, improved, reason, self.progress, gave_up)

    # ----------------------------------------------------------------------------------- budgets

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def _budget_left(self) -> bool:
        if self._stop_reason:
            return False
        if self.progress.samples >= self.budget.samples:
            return False
        if self.budget.minutes is not None and self._elapsed() >= self.budget.minutes * 60:
            self._stop_reason = f"time budget of {self.budget.minutes:g} minutes spent"
            return False
        if self.budget.tokens is not None and self.progress.tokens_in + self.progress.tokens_out >= self.budget.tokens:
            self._stop_reason = f"token budget of {self.budget.tokens} spent"
            return False
        return True

    def _save_budget(self) -> None:
        self.progress.elapsed_s = self._elapsed()
        p = self.progress
        self.store.update_run_budget(self.run_id, p.samples, p.tokens_in, p.tokens_out, p.elapsed_s)

    # ------------------------------------------------------------------------------ one sample

    async def _worker(self, slot: int) -> None:
        while self._budget_left():
            sample = self.progress.samples
            self.progress.samples += 1  # reserved before any await: concurrent workers never overshoot
            island = sample % len(self.islands)
            try:
                await self._sample(island, sample)
            finally:
                self._save_budget()
                if (sample + 1) % self.config.migration_every == 0:
                    self._migrate()
                if self.on_progress:
                    self.on_progress(self.progress)

    async def _sample(self, island: int, sample: int) -> None:
        parent, block, operator, tokens, generation_s, problem = await self._propose(island, sample)
        if block is None:
            if problem.startswith(MODEL_FAILED):  # recorded, not shown to the model as its own mistake
                self._record(island, parent, operator, tokens, generation_s, source="", status="model_failed", stage="model", message=problem)
                return
            self._record(island, parent, operator, tokens, generation_s, source=problem or "", status="no_code", stage="extract", message=problem or "")
            self.last_error[island] = problem
            return
        digest = source_hash(block, self.config.language)
        if digest in self.seen:
            self.progress.duplicates += 1
            self._record(island, parent, operator, tokens, generation_s, source=block, digest=digest, status="duplicate", stage="dedup", message="seen before; not evaluated again")
            return
        self.seen.add(digest)
        started = time.monotonic()
        built = await asyncio.to_thread(build_candidate, self.component, block, self.config.language, self.compile_options)
        built, block, operator = await self._apply_compiler_fixes(built, block, operator)
        repairs = 0
        while isinstance(built, BuildFailure) and built.stage == "compile" and operator != "tune" and repairs < self.config.repair_tries:
            repairs += 1
            repaired, more_tokens, more_s = await self._repair(block, built.log)
            tokens = (tokens[0] + more_tokens[0], tokens[1] + more_tokens[1])
            generation_s += more_s
            if repaired is None or source_hash(repaired, self.config.language) in self.seen:
                break
            block = repaired
            self.seen.add(source_hash(block, self.config.language))
            operator = f"{operator}+repair"
            built = await asyncio.to_thread(build_candidate, self.component, block, self.config.language, self.compile_options)
        compile_s = time.monotonic() - started
        if isinstance(built, BuildFailure):
            self.progress.compile_failed += built.stage == "compile"
            self.last_error[island] = f"{built.message}\n{built.log}".strip()
            self._record(island, parent, operator, tokens, generation_s, source=block, digest=source_hash(block, self.config.language),
                         status="compile_failed" if built.stage == "compile" else "rejected", stage=built.stage,
                         message=built.message, compile_log=built.log, compile_s=compile_s)  # fmt: skip
            return
        self.progress.compiled += 1
        logger.info("sample %d: compiled in %.2fs, %d bytes, SHA-256 %s", sample, compile_s, len(built.wasm), built.sha256)
        evaluation = await self.executor.evaluate(
            self.component,
            block,
            self.config.language,
            Split.TRAIN,
            built=built,
            random_cases=self.config.random_cases,
            time_limit_s=self.config.eval_time_limit_s,
        )
        score = evaluation.aggregate["candidate"] if evaluation.aggregate else None
        candidate_id = self._record(
            island, parent, operator, tokens, generation_s, source=block, digest=source_hash(block, self.config.language),
            status=evaluation.status, stage=evaluation.stage, message=evaluation.message, compile_log=evaluation.log,
            evaluation=evaluation, score=score, wasm_sha256=built.sha256, compile_s=compile_s,
        )  # fmt: skip
        if not evaluation.correct:
            failure = evaluation.first_failure or {}
            self.last_error[island] = failure.get("message") or evaluation.message
            return
        self.progress.correct += 1
        self.last_error[island] = None
        if score == parent.score and operator != "tune":
            # Small models often rewrite the parent into an equivalent: say so, or it keeps doing it.
            self.last_error[island] = (
                f"Your last block was correct but scored exactly what its parent scored ({score:g}): it made the "
                "same decisions. Write a genuinely different rule, not a rescaling of the same one."
            )
        member = Member(candidate_id, block, score, evaluation.improvement_pct, _scores(evaluation))
        self._admit(island, member)
        self._remember_tunable(island, member)
        if member.improvement_pct > self.progress.best_improvement_pct:
            self.progress.best_improvement_pct = member.improvement_pct
            if self.progress.first_improvement_s is None:
                self.progress.first_improvement_s = self._elapsed()

    async def _propose(self, island: int, sample: int):
        """(parent, block or None, operator, (tokens in, out), seconds, problem text if no block)."""
        # A model that generates one answer at a time (the embedded one) is busy with another sample's
        # call: waiting for it would idle this worker for tens of seconds, a tune takes about two.
        model_busy = bool(getattr(self.provider, "busy", False))
        if model_busy or self.rng.random() < self.config.tune_share:
            tuned = self._tune(island)
            if tuned is not None:
                return *tuned, "tune", (0, 0), 0.0, None
        parent = self._pick_parent(island)
        mode = "edits" if self.rng.random() < 0.3 else "block"
        direction = self._direction(sample)
        messages = build_messages(
            self.component,
            self.config.language,
            problem=self.problem,
            parent=self._parent_info(parent),
            inspirations=[self._parent_info(m) for m in self._inspirations(island, parent)],
            last_error=self.last_error[island],
            mode=mode,
            direction=direction,
        )
        logger.info(
            "sample %d: built prompt (%d chars) from candidate %d%s", sample, sum(len(m.content) for m in messages),
            parent.candidate_id, f", idea: {direction[:60]}..." if direction else "",
        )  # fmt: skip
        completion, seconds, failure = await self._complete(messages, sample)
        if completion is None:
            return parent, None, f"llm-{mode}", (0, 0), seconds, f"{MODEL_FAILED}: {failure}"
        logger.info("sample %d: generated %d chars in %.2fs (%d tokens out)", sample, len(completion.text), seconds, completion.tokens_out)
        tokens = (completion.tokens_in, completion.tokens_out)
        extraction = extract_candidate(completion.text, parent.block, self.config.language)
        if extraction.block is None:
            return parent, None, f"llm-{mode}", tokens, seconds, extraction.error or "no code in the answer"
        return parent, extraction.block, f"llm-{mode}", tokens, seconds, None

    def _tune(self, island: int) -> tuple[Member, str] | None:
        """(parent, its block with constants re-tuned), or None when the island has no program with a
        constant to tune. The parent is the best elite that has constants (exploit of the time), else any
        of those elites or of the recent correct programs with constants. The step is wide (factors up to
        10) one time in WIDE_JUMP_CHANCE, and spans decades (up to PLATEAU_JUMP) when the parent behaves
        exactly like the baseline: a model's first guess at a threshold or a penalty is often off by orders
        of magnitude, and a small step from a plateau stays on it."""
        elites = [m for m in self.islands[island] if can_retune(m.block, self.config.language)]
        pool = elites + [m for m in self.tunable[island] if all(m.candidate_id != e.candidate_id for e in elites)]
        if not pool:
            return None
        parent = elites[0] if elites and self.rng.random() < self.config.exploit else self.rng.choice(pool)
        plateau = self.baseline is not None and parent.scores == self.baseline.scores
        if plateau:
            # A rule such as "penalise gaps below T by P" stays inert until T and P are *both* in range,
            # so from a plateau every constant (up to three) moves at once.
            return parent, retune(parent.block, self.config.language, self.rng, count=3, scale=PLATEAU_JUMP)
        scale = WIDE_JUMP if self.rng.random() < WIDE_JUMP_CHANCE else 2.0
        return parent, retune(parent.block, self.config.language, self.rng, scale=scale)

    def _remember_tunable(self, island: int, member: Member) -> None:
        if can_retune(member.block, self.config.language):
            self.tunable[island].append(member)

    def _direction(self, sample: int) -> str | None:
        """The component's directions in turn, with one turn in (len + 1) left free for the model's own ideas."""
        directions = self.component.directions_for(self.config.language)
        if not directions:
            return None
        slot = sample % (len(directions) + 1)
        return directions[slot] if slot < len(directions) else None

    async def _apply_compiler_fixes(self, built, block: str, operator: str):
        """Before any model repair: apply rustc's own MachineApplicable suggestions (`0` -> `0.0`, a
        missing `mut`...), up to AUTOFIX_ROUNDS times, since one fix can uncover the next error."""
        fixed_any = False
        for _ in range(AUTOFIX_ROUNDS):
            if not (isinstance(built, BuildFailure) and built.stage == "compile"):
                break
            fixed = await asyncio.to_thread(autofix_block, self.component, block, self.config.language, self.compile_options)
            if fixed is None or source_hash(fixed, self.config.language) in self.seen:
                break
            block = fixed
            self.seen.add(source_hash(block, self.config.language))
            fixed_any = True
            built = await asyncio.to_thread(build_candidate, self.component, block, self.config.language, self.compile_options)
        return built, block, f"{operator}+rustfix" if fixed_any else operator

    async def _repair(self, block: str, log: str):
        messages = repair_messages(self.component, self.config.language, block, log)
        completion, seconds, _failure = await self._complete(messages, self.rng.randrange(1 << 30))
        if completion is None:
            return None, (0, 0), seconds
        extraction = extract_candidate(completion.text, block, self.config.language)
        return extraction.block, (completion.tokens_in, completion.tokens_out), seconds

    async def _complete(self, messages, sample: int):
        """(completion, seconds, None), or (None, seconds, what went wrong) when the model call failed: a
        failed call (a timeout, a crashed model worker, a server error) is recorded and the search goes
        on; MAX_CONSECUTIVE_LLM_ERRORS in a row end the run."""
        from ..llm.base import LLMError

        started = time.monotonic()
        try:
            completion = await self.provider.complete(
                messages, max_tokens=self.config.max_new_tokens, temperature=self.config.temperature, seed=self.config.seed * 100_003 + sample
            )
        except LLMError as error:
            self._llm_errors += 1
            logger.warning("model call failed (%d in a row): %s", self._llm_errors, error)
            if self._llm_errors >= MAX_CONSECUTIVE_LLM_ERRORS:
                self._stop_reason = f"the model failed {self._llm_errors} times in a row: {error}"
            return None, time.monotonic() - started, str(error)
        self._llm_errors = 0
        self.progress.tokens_in += completion.tokens_in
        self.progress.tokens_out += completion.tokens_out
        return completion, time.monotonic() - started, None

    # --------------------------------------------------------------------------- the population

    def _sorted(self, members: list[Member]) -> list[Member]:
        reverse = self.component.objective.direction == "max"
        return sorted(members, key=lambda m: m.score, reverse=reverse)

    def _admit(self, island: int, member: Member) -> None:
        """Keep the island's best few, one per measured behaviour: a block that scores exactly what an elite
        scores on every workload (for a heuristic, almost always the same decisions, e.g. best fit rescaled)
        does not take a second slot, so the slots hold programs that behave differently."""
        members = self.islands[island]
        if any(m.candidate_id == member.candidate_id or (member.scores and m.scores == member.scores) for m in members):
            return
        self.islands[island] = self._sorted(members + [member])[: self.config.elites]

    def _pick_parent(self, island: int) -> Member:
        elites = self.islands[island] or [self.baseline]
        if len(elites) == 1 or self.rng.random() < self.config.exploit:
            return elites[0]
        return self.rng.choice(elites)

    def _inspirations(self, island: int, parent: Member) -> list[Member]:
        others = [m for i, members in enumerate(self.islands) if i != island for m in members[:1]]
        others += [m for m in self.islands[island][1:2]]
        return [m for m in self._sorted(others) if m.candidate_id != parent.candidate_id][:2]

    def _migrate(self) -> None:
        bests = [members[0] if members else None for members in self.islands]
        for i, best in enumerate(bests):
            if best is None:
                continue
            target = (i + 1) % len(self.islands)
            if all(m.candidate_id != best.candidate_id for m in self.islands[target]):
                self._admit(target, best)

    def _best(self) -> Member | None:
        members = [m for island in self.islands for m in island]
        return self._sorted(members)[0] if members else None

    def _parent_info(self, member: Member) -> ParentInfo:
        summary = f"improvement over the baseline on training workloads: {member.improvement_pct:+.3f} %"
        return ParentInfo(member.block, member.scores, summary)

    # ------------------------------------------------------------------------------ the baseline

    async def _measure_baseline(self) -> None:
        block = self.component.baseline_block(self.config.language)
        evaluation = await asyncio.to_thread(
            evaluate, self.component, block, self.config.language, Split.TRAIN,
            random_cases=self.config.random_cases, time_limit_s=self.config.eval_time_limit_s,
        )  # fmt: skip
        digest = source_hash(block, self.config.language)
        self.seen.add(digest)
        score = evaluation.aggregate["candidate"] if evaluation.aggregate else None
        candidate_id = self._record(0, None, "baseline", (0, 0), 0.0, source=block, digest=digest, status=evaluation.status,
                                    stage=evaluation.stage, message=evaluation.message, evaluation=evaluation, score=score)  # fmt: skip
        if evaluation.correct:
            self.baseline = Member(candidate_id, block, score, 0.0, _scores(evaluation))
            for island in range(len(self.islands)):
                self._admit(island, self.baseline)

    # ----------------------------------------------------------------------------------- records

    def _record(self, island, parent, operator, tokens, generation_s, *, source, status, stage, message,
                digest=None, compile_log="", evaluation: Evaluation | None = None, score=None, wasm_sha256=None, compile_s=0.0) -> int:  # fmt: skip
        return self.store.add_candidate(
            self.run_id,
            island=island,
            generation=self.progress.samples,
            parent_id=parent.candidate_id if parent else None,
            operator=operator,
            provider=getattr(self.provider, "name", "?") if operator not in ("tune", "baseline") else "-",
            model=getattr(self.provider, "model", "?") if operator not in ("tune", "baseline") else "-",
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            language=self.config.language.value,
            source=source,
            source_hash=digest or "",
            status=status,
            stage=stage,
            message=message or "",
            compile_log=compile_log or "",
            verification={"first_failure": evaluation.first_failure, "cases_passed": evaluation.cases_passed, "cases_total": evaluation.cases_total} if evaluation else None,
            metrics={"workloads": evaluation.workloads, "aggregate": evaluation.aggregate} if evaluation and evaluation.workloads else None,
            score=score,
            improvement_pct=evaluation.improvement_pct if evaluation else None,
            wasm_sha256=wasm_sha256,
            generation_s=generation_s,
            compile_s=compile_s,
            evaluation_s=evaluation.wall_s if evaluation else 0.0,
        )

    def _resume(self, run_id: str) -> None:
        run = self.store.resume_run(run_id)
        self.run_id = run.run_id
        rows = self.store.candidates(run_id)
        self.seen = {row.source_hash for row in rows if row.source_hash}
        self.progress.samples = sum(1 for row in rows if row.operator != "baseline")
        self.progress.tokens_in = sum(row.tokens_in for row in rows)
        self.progress.tokens_out = sum(row.tokens_out for row in rows)
        self._elapsed_before = getattr(run, "elapsed_s", 0.0) or 0.0
        for row in rows:
            if row.status != Status.CORRECT or row.score is None:
                continue
            metrics = row.metrics or {}
            member = Member(row.id, row.source, row.score, row.improvement_pct or 0.0, _scores_from(metrics.get("workloads", []), self.component))
            if row.operator == "baseline":
                self.baseline = member
                for island in range(len(self.islands)):
                    self._admit(island, member)
            else:
                self._admit(row.island % len(self.islands), member)
                self._remember_tunable(row.island % len(self.islands), member)
                self.progress.correct += 1
                self.progress.best_improvement_pct = max(self.progress.best_improvement_pct, member.improvement_pct)
        logger.info("resuming run %s: %d samples done, %d correct", run_id, self.progress.samples, self.progress.correct)


def _scores(evaluation: Evaluation) -> dict[str, float]:
    metric = evaluation.aggregate["metric"] if evaluation.aggregate else None
    return {f"{w['id']} {metric}": w["candidate"][metric] for w in evaluation.workloads} if metric else {}


def _scores_from(workloads: list[dict], component: Component) -> dict[str, float]:
    metric = component.objective.metric
    return {f"{w['id']} {metric}": w["candidate"][metric] for w in workloads if metric in w.get("candidate", {})}
