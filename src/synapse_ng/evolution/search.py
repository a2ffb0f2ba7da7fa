"""The search: a population of measured programs, evolved by a language model and a constant tuner.

A sample picks an island and proposes an `Attempt`: the tuner re-tunes the constants of one of the
island's programs (a share of the samples, and every sample while a one-call-at-a-time model is busy, as
long as it has an untried setting of a really tunable constant), or the model writes a better block for a
parent the population picks (operators.py); with nothing left to tune, a worker waits for the model. A
block whose normalised source was seen before in the run is never built again, and a duplicate does not
count against the sample budget (MAX_DUPLICATES_IN_A_ROW of them end the run: the model only repeats).
A block that does not compile first gets rustc's own machine-applicable fixes, then goes back to the model
for a bounded number of repairs.
What builds is evaluated on *training* workloads only, and a correct program is admitted to its
island (population.py); every few samples each island's best migrates to the next. At the end the best
training program whose gain is shown instance by instance (significance.py) is re-measured on *held-out*
workloads, and only a held-out improvement that passes the same test, stricter, counts.

Every attempt is written to the store as it ends, so a killed run resumes where it stopped
(`resume_run_id`), losing at most the samples that were in flight. Several samples run concurrently, so
model calls overlap evaluations, each evaluation in its own worker process (executors.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from ..collaboration.agreement import Final, choose_winner
from ..collaboration.messages import MAX_LINEAGE
from ..components import Component, Split
from ..languages import source_hash
from ..models import CodeLanguage
from ..outcome import Outcome, Stage
from ..toolchain import CompileOptions
from ..workers import run_in_worker
from .attempt import BASELINE, MIGRANT, START, TUNE, Attempt
from .build import BuildFailure, BuiltModule, build_candidate
from .evaluate import Evaluation, evaluate
from .exchange import Alone, Migrant, misreport
from .executors import LocalExecutor
from .measure import component_ref
from .operators import Answer, ModelOperator, SettingsBatch, Tuner, fix_with_rustc
from .population import Population
from .significance import SELECTION_LEVEL, luck, shown_in_training
from .slots import measure_settings_job
from .store import Store

logger = logging.getLogger(__name__)

EDITS_SHARE = 0.3  # of model samples, asked for SEARCH/REPLACE edits rather than a whole block
MAX_DUPLICATES_IN_A_ROW = 50
ANSWER_TOKENS = {CodeLanguage.WAT: 1600}  # the model's answer limit where it is not the default 900


@dataclass(frozen=True)
class Budget:
    samples: int = (
        24  # candidates proposed (by the model or the tuner), the baseline and duplicates not counted
    )
    minutes: float | None = None
    tokens: int | None = None  # prompt + completion tokens


@dataclass(frozen=True)
class SearchConfig:
    islands: int = 2
    elites: int = 4  # kept per island
    migration_every: int = 8  # samples
    repair_tries: int = 1
    # Of samples, when a program has constants to tune (cheap: no model call); all samples while a
    # one-call-at-a-time model is busy.
    tune_share: float = 0.4
    exploit: float = 0.7  # chance to take an island's best as parent, else a random elite
    concurrency: int = 2  # samples in flight (model calls overlap evaluations)
    language: CodeLanguage = CodeLanguage.RUST
    seed: int = 0  # of every random choice, and (with the sample) of the model's sampling
    # A block, with room for a short explanation around it; None: ANSWER_TOKENS for the language (WAT
    # takes two to three times the tokens of Rust for the same code: raft's baseline block is 3.4k chars).
    max_new_tokens: int | None = None
    temperature: float | None = None  # None: the provider's own config (LLMProviderConfig.temperature)
    random_cases: int = 20  # of the correctness suite, besides the fixed edge cases
    # Settings of float constants measured from one build per tune (evolution.slots); 0: one compile each.
    batch_settings: int = 24
    eval_time_limit_s: float = 300.0  # after which an evaluation's worker is killed
    # False: no model call at all; the tuner works alone and the run ends when it has nothing untried
    # (the ablation's arms in benchmarks/evolution.py: what the model adds is measured, not assumed).
    use_model: bool = True
    # Propose the component's starting points (complete blocks in the directions' shapes) first.
    starting_points: bool = False

    def to_dict(self) -> dict:
        data = asdict(self)
        data["language"] = self.language.value
        return data


def sampling_temperature(config: SearchConfig, provider) -> float:
    """The search's own setting if it has one, else the provider's config (the seed's 0.2 by default),
    else 0.8 for a provider without a config. The run's record keeps the value used."""
    if config.temperature is not None:
        return config.temperature
    provider_config = getattr(provider, "config", None)
    return float(getattr(provider_config, "temperature", 0.8))


class Progress:
    """What the search has done so far: shown as it goes, and printed whole (`vars`) in the CLI's JSON."""

    def __init__(self) -> None:
        self.samples = 0  # proposals that counted: duplicates give their sample back
        self.proposals = 0  # every proposal, duplicates too: numbers each one (its seed, its island)
        self.duplicates_in_a_row = 0
        # What became of them:
        self.compiled = self.compile_failed = self.correct = self.duplicates = 0
        self.settings_measured = 0  # constant settings measured from slotted builds (the tuner's fast path)
        # What they cost, and how far the search got:
        self.tokens_in = self.tokens_out = 0
        self.best_improvement_pct = 0.0
        self.first_improvement_s: float | None = None  # from the start to the first training improvement
        self.elapsed_s = 0.0


@dataclass
class SearchResult:
    run_id: str
    component: str
    baseline_score: float | None
    best: Attempt | None
    heldout: Evaluation | None  # the best candidate re-measured on held-out workloads
    built: BuiltModule | None
    improved: bool  # a held-out improvement, with evidence
    reason: str
    progress: Progress
    model_gave_up: bool = False  # the run ended because the model kept failing (not for lack of ideas)
    stopped: str = ""  # why the search stopped proposing: which budget was spent, or what ended it


class BudgetSpent(Exception):
    """The run stops proposing: its minutes ended during a model call (which was cancelled), or a run
    without a model has nothing left to tune."""


def final_of(migrant: Migrant, judged: Attempt | None, may_win: bool = True) -> Final:
    """An island's final as this island measured it: eligible to win only with a training gain over the
    baseline that passed the significance test here (and `may_win`)."""
    if judged is None:
        return Final(migrant.sender, migrant.source_hash, migrant.score, None)
    aggregate = (judged.metrics or {}).get("aggregate") or {}
    shown = may_win and (judged.improvement_pct or 0.0) > 0 and shown_in_training(aggregate)
    return Final(migrant.sender, migrant.source_hash, migrant.score, judged.score, shown)


def failing_case(evaluation: Evaluation) -> str:
    """What the model is shown of a wrong program: the first failing case's message and, where the
    component knows them, its input, the expected answer and what the program returned."""
    failure = evaluation.first_failure or {}
    lines = [failure.get("message") or evaluation.message]
    for key in ("input", "expected", "got"):
        value = failure.get(key)
        if value and str(value) not in lines[0]:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


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
        starts: tuple[str, ...] | None = None,
        exchange=None,
        deployed: str | None = None,
        banned: tuple[str, ...] = (),
    ):
        """`starts`: blocks proposed before anything else, each built and judged like any candidate
        (operator "start"); by default the component's starting points if config.starting_points.
        `exchange`: the other islands of a collaborative evolution (exchange.py); none by default.
        `deployed`: the block live in the network now: the search starts from it (judged first), and only
        a program that beats it, on training and on held-out work, can win. `banned`: the blocks of
        upgrades the network rolled back: never built again, and a program that behaves exactly like one
        (the same figure on every training workload) is never admitted."""
        self.component = component
        self.store = store
        self.problem = problem
        self.config = config
        self.budget = budget
        self.compile_options = compile_options
        self.on_progress = on_progress
        self.executor = executor or LocalExecutor()
        self.rng = random.Random(config.seed)  # one seeded sequence for every choice of the run
        direction = component.objective.direction
        self.population = Population(
            config.islands, config.elites, direction, config.language, self.rng, config.exploit
        )
        self.model = ModelOperator(
            component,
            provider,
            language=config.language,
            problem=problem,
            seed=config.seed,
            max_new_tokens=config.max_new_tokens or ANSWER_TOKENS.get(config.language, 900),
            temperature=sampling_temperature(config, provider),
        )
        self.tuner = Tuner(
            self.population, config.language, self.rng, config.exploit, component.interface_codes
        )
        self.last_error: list[str | None] = [None] * config.islands  # shown to the model next time
        if starts is None:
            starts = component.starting_points_for(config.language) if config.starting_points else ()
        self.starts = ([deployed] if deployed else []) + list(starts)
        self.deployed = deployed
        self.deployed_hash = source_hash(deployed, config.language) if deployed else None
        self.banned = list(banned)
        self._banned_behaviours: list[dict[str, float]] = []
        # The best training program whose gain is shown instance by instance: the one confirmed at the end.
        self.proven: Attempt | None = None
        self.progress = Progress()
        self.exchange = exchange or Alone()
        self._inbox: list[Migrant] = []
        self._links: dict[int, tuple[str, int | None]] = {}  # attempt id -> (source hash, parent id)
        self._foreign: dict[int, tuple[str, ...]] = {}  # a migrant's attempt id -> the lineage it came with
        self._measured: dict[str, Attempt] = {}  # source hash -> its correct attempt, judged here
        self._started = time.monotonic()
        self._elapsed_before = 0.0
        self._stop_reason: str | None = None
        self.run_id = ""

    # ------------------------------------------------------------------------------------ the run

    async def run(self, resume_run_id: str | None = None) -> SearchResult:
        if resume_run_id:
            self._resume(resume_run_id)
        else:
            settings = {
                "config": {**self.config.to_dict(), "temperature": self.model.temperature},
                "budget": asdict(self.budget),
                "problem": self.problem,
            }
            self.run_id = self.store.create_run(
                self.component.name,
                self.model.name,
                self.model.model,
                self.config.seed,
                settings,
                direction=self.component.objective.direction,
            )
        logger.info("run %s: evolving %s with %s", self.run_id, self.component.name, self.model.model)
        if self.population.baseline is None:
            await self._measure_baseline()
        if self.population.baseline is None:
            return self._finish(None, None, None, "the baseline does not pass its own evaluation here")
        await self._measure_banned()
        slots = max(1, self.config.concurrency)
        await asyncio.gather(*(asyncio.create_task(self._worker()) for _ in range(slots)))
        await self._measure_deployed()
        if self.exchange.collaborative:
            return await self._agree()
        best = self.population.best()
        if self.model.gave_up:  # a broken model is a failed run: nothing is confirmed or proposed from it
            return self._finish(best, None, None, self.model.gave_up)
        if best is None or (best.improvement_pct or 0.0) <= 0:
            reason = self._stop_reason or "no candidate beat the baseline on the training workloads"
            return self._finish(best, None, None, reason)
        if self.deployed_hash and self.deployed_hash not in self._measured:
            return self._finish(best, None, None, "the deployed version does not pass its evaluation here")
        if self.proven is None and (best.source_hash == self.deployed_hash or not self._beats_deployed(best)):
            return self._finish(
                best, None, None, "no candidate beat the deployed version on the training workloads"
            )
        if self.proven is None:
            verdict = (best.metrics or {}).get("aggregate", {}).get("significance") or {}
            reason = (
                f"no training gain was shown instance by instance: the best, {best.improvement_pct:+.3f} %, "
                f"has p = {verdict.get('p_value', 1.0):.3g} (needs p < {SELECTION_LEVEL:g})"
            )
            return self._finish(best, None, None, reason)
        return await self._confirm_on_heldout(self.proven)

    async def _agree(self) -> SearchResult:
        """The end of a collaborative run: send this island's last word, re-measure every island's, and
        take the winner every island derives the same way; only the island that proposes confirms it on
        held-out work. Even a run whose model gave up sends its final: the others wait for it."""
        best = self.population.best()
        own = self.proven or best or self.population.baseline
        assert own is not None  # the run does not start without a baseline
        finals = []
        for migrant in await self.exchange.finals(own, self._lineage(own)):
            judged = await self._remeasure(migrant)
            # The deployed block itself, or a program no better, reproduces but cannot win.
            finals.append(final_of(migrant, judged, judged is not None and self._beats_deployed(judged)))
        winner = choose_winner(finals, self.component.objective.direction)
        self.exchange.decided(winner, finals)
        if self.model.gave_up:
            return self._finish(best, None, None, self.model.gave_up)
        if winner is None:
            reason = (
                f"no island's final program ({len(finals)} finals) reproduced a training gain shown "
                "instance by instance"
            )
            return self._finish(best, None, None, reason)
        if not await self.exchange.should_propose(winner):
            reason = (
                f"the islands chose {winner.source_hash[:12]} from node {winner.author[:12]}; "
                "another island proposes it"
            )
            return self._finish(best, None, None, reason)
        return await self._confirm_on_heldout(self._measured[winner.source_hash])

    async def _remeasure(self, migrant: Migrant, island: int = 0) -> Attempt | None:
        """Another island's program, judged here like any candidate: its correct attempt when the figures
        measured here are the ones claimed, else None (and the exchange hears why).

        A migrant is built exactly as sent: no rustc fixes and no model repairs (its hash is of what was
        sent, and a repair would cost this island a model call for another's mistake). What is not known
        here as correct is measured, even when this island saw its hash in a form it never measured (a
        tuner setting), so that every island judges the same finals the same way."""
        digest = source_hash(migrant.source, self.config.language)
        if digest != migrant.source_hash:
            self.exchange.judged(
                migrant, "misreport", f"its source hashes to {digest[:12]}, not {migrant.source_hash[:12]}"
            )
            return None
        known = self._measured.get(digest)
        if known is not None:
            problem = misreport(migrant, known.score, known.scores)
            if problem:
                self.exchange.judged(migrant, "misreport", problem)
                return None
            self.exchange.judged(migrant, "admitted", "reproduced: this island measured the same program")
            return known
        self.population.claim(digest)
        parent = self.population.baseline
        assert parent is not None  # the run does not start without one
        attempt = self._attempt(island, parent, MIGRANT, migrant.source)
        attempt.provider, attempt.model = "island", migrant.sender[:16]
        started = time.monotonic()
        built = await asyncio.to_thread(self._build, attempt.source)
        attempt.compile_s = time.monotonic() - started
        if isinstance(built, BuildFailure):
            attempt.failed(built)
        else:
            await self._judge_on_training(attempt, built)
        problem = misreport(migrant, attempt.score, attempt.scores) if attempt.correct else None
        if problem:
            attempt.end(Outcome.MISREPORTED, Stage.WORKLOADS, problem)
            # The claim was false, not the program: the model or an honest island may still bring it.
            self.population.seen.discard(digest)
        banned = not problem and self._banned(attempt)
        self._store(attempt)
        assert attempt.id is not None  # given by the store
        self._foreign[attempt.id] = migrant.lineage
        if not attempt.correct:
            verdict = "misreport" if problem else "dropped"
            reason = problem or (attempt.message if banned else f"not correct here: {attempt.message}")
            self.exchange.judged(migrant, verdict, reason)
            return None
        self._admit(island, attempt, parent)
        self.exchange.judged(migrant, "admitted", f"reproduced: training score {attempt.score:g}")
        return attempt

    async def _behind_deployed(self, heldout: Evaluation) -> str | None:
        """Why the candidate does not beat the deployed block on held-out work, or None (or no block)."""
        deployed = self._measured.get(self.deployed_hash or "")
        if deployed is None:
            return None
        live = await self._evaluate(deployed.source, Split.HELDOUT)
        ours, theirs = (heldout.aggregate or {}).get("candidate"), (live.aggregate or {}).get("candidate")
        if ours is None or theirs is None or self.component.objective.better(ours, theirs):
            return None
        return (
            f"the best candidate does not beat the deployed version on held-out work ({ours:g} vs {theirs:g})"
        )

    def _beats_deployed(self, attempt: Attempt) -> bool:
        """Better than the deployed block on training work: True when there is none; False while it is
        unmeasured (nothing beats a block no one has measured: the run measures it before it ends)."""
        if self.deployed_hash is None:
            return True
        deployed = self._measured.get(self.deployed_hash)
        if deployed is None or deployed.score is None or attempt.score is None:
            return False
        return attempt.source_hash != self.deployed_hash and self.component.objective.better(
            attempt.score, deployed.score
        )

    async def _measure_deployed(self) -> None:
        """The deployed block, judged now if the budget ended before its turn as a start came (a budget
        of one sample, spent on the model's answer): no program wins without beating it."""
        if self.deployed is None or self.deployed_hash in self._measured:
            return
        if not self.population.claim(self.deployed_hash or ""):
            return  # judged already, and not correct here: nothing can beat it, the run says why
        baseline = self.population.baseline
        assert baseline is not None  # the run does not start without one
        attempt = self._attempt(0, baseline, START, self.deployed)
        attempt = await self._judge_new(attempt, 0, self.progress.proposals)
        self._store(attempt)
        if attempt.correct:
            self._admit(0, attempt, baseline)

    def _lineage(self, attempt: Attempt) -> list[str]:
        """The source hashes `attempt` descends from, newest first: its parents here, then the lineage a
        migrant ancestor came with."""
        chain: list[str] = []
        at = attempt.parent_id
        if attempt.id in self._foreign:
            chain.extend(self._foreign[attempt.id])
        while at is not None and at in self._links and len(chain) < MAX_LINEAGE:
            digest, parent = self._links[at]
            chain.append(digest)
            chain.extend(self._foreign.get(at, ()))
            at = parent
        return chain[:MAX_LINEAGE]

    async def _evaluate(self, block: str, split: Split) -> Evaluation:
        """A block built and measured in a worker, off the event loop: the baseline, a rolled-back block,
        the deployed one on held-out work."""
        return await asyncio.to_thread(
            evaluate,
            self.component,
            block,
            self.config.language,
            split,
            random_cases=self.config.random_cases,
            time_limit_s=self.config.eval_time_limit_s,
        )

    async def _measure_banned(self) -> None:
        """What each rolled-back block does on the training workloads: a program that does exactly the
        same is the same upgrade again, whatever its source."""
        for block in self.banned:
            self.population.claim(source_hash(block, self.config.language))
            evaluation = await self._evaluate(block, Split.TRAIN)
            probe = Attempt(self.run_id, 0, None, BASELINE, self.config.language)
            probe.judged(evaluation)
            if probe.scores:
                self._banned_behaviours.append(probe.scores)

    def _banned(self, attempt: Attempt) -> bool:
        """A correct program that behaves exactly like a rolled-back upgrade is ended as banned."""
        if not attempt.correct or not attempt.scores or attempt.scores not in self._banned_behaviours:
            return False
        attempt.end(
            Outcome.BANNED,
            Stage.WORKLOADS,
            "it scores exactly what an upgrade the network rolled back scored on every training workload",
        )
        return True

    async def _confirm_on_heldout(self, best: Attempt) -> SearchResult:
        """Only an improvement on workloads the search never saw counts, and it is stored with evidence."""
        built = await asyncio.to_thread(self._build, best.source)
        if isinstance(built, BuildFailure):
            return self._finish(best, None, None, f"the best candidate no longer builds: {built.message}")
        heldout = await asyncio.to_thread(
            evaluate,
            self.component,
            best.source,
            self.config.language,
            Split.HELDOUT,
            random_cases=self.config.random_cases,
            time_limit_s=self.config.eval_time_limit_s,
            built=built,
        )
        if not heldout.correct:
            reason = f"the best candidate failed on held-out work: {heldout.message}"
            return self._finish(best, heldout, built, reason)
        improvement = heldout.improvement_pct
        if improvement is None or improvement <= 0:
            reason = f"the best training candidate does not improve held-out work ({improvement:.3f} %)"
            return self._finish(best, heldout, built, reason)
        unproven = luck(heldout.aggregate or {})
        if unproven:
            reason = f"the held-out gain of {improvement:.3f} % {unproven}"
            return self._finish(best, heldout, built, reason)
        behind = await self._behind_deployed(heldout)
        if behind:
            return self._finish(best, heldout, built, behind)
        sha = self.store.put_artifact(built.wasm)
        name = self.component.name
        self.store.record_result(self.run_id, best.id, name, improvement, heldout.evidence or {}, sha)
        reason = f"held-out improvement of {improvement:.3f} %"
        return self._finish(best, heldout, built, reason, improved=True)

    def _finish(self, best, heldout, built, reason: str, improved: bool = False) -> SearchResult:
        self._save_budget()
        status = "improved" if improved else "no_improvement"
        self.store.finish_run(self.run_id, status, reason, best.id if best else None)
        logger.info("run %s finished: %s", self.run_id, reason)
        baseline = self.population.baseline
        return SearchResult(
            self.run_id,
            self.component.name,
            baseline.score if baseline else None,
            best,
            heldout,
            built,
            improved,
            reason,
            self.progress,
            self.model.gave_up is not None,
            self._stop_reason or f"sample budget of {self.budget.samples} spent",
        )

    # ----------------------------------------------------------------------------------- budgets

    async def _within_budget(self, call: Coroutine[Any, Any, Answer]) -> Answer:
        """A model call, cancelled when the time budget ends (the model stops generating): a run keeps
        to its minutes instead of waiting out answers nobody will use."""
        if self.budget.minutes is None:
            return await call
        left = self.budget.minutes * 60 - self._elapsed()
        try:
            # asyncio.timeout runs the call in this task at once (3.11's wait_for wraps it in a new task
            # that starts a loop turn later, when another worker could still see the model idle).
            async with asyncio.timeout(max(left, 0.0)):
                return await call
        except TimeoutError:
            raise BudgetSpent from None

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def _budget_left(self) -> bool:
        self._stop_reason = self._stop_reason or self.model.gave_up
        if self._stop_reason:
            return False
        if self.progress.duplicates_in_a_row >= MAX_DUPLICATES_IN_A_ROW:
            repeats = self.progress.duplicates_in_a_row
            self._stop_reason = f"the last {repeats} proposals all repeated programs seen before"
            return False
        if self.progress.samples >= self.budget.samples:
            return False
        if self.budget.minutes is not None and self._elapsed() >= self.budget.minutes * 60:
            self._stop_reason = f"time budget of {self.budget.minutes:g} minutes spent"
            return False
        spent = self.progress.tokens_in + self.progress.tokens_out
        if self.budget.tokens is not None and spent >= self.budget.tokens:
            self._stop_reason = f"token budget of {self.budget.tokens} spent"
            return False
        return True

    def _save_budget(self) -> None:
        self.progress.elapsed_s = self._elapsed()
        p = self.progress
        self.store.update_run_budget(self.run_id, p.samples, p.tokens_in, p.tokens_out, p.elapsed_s)

    # ------------------------------------------------------------------------------ one sample

    async def _worker(self) -> None:
        while self._budget_left():
            self._inbox.extend(self.exchange.incoming())
            if self._inbox:  # another island's program: re-measured before a sample of this island's own
                migrant = self._inbox.pop(0)
                await self._remeasure(migrant, self.progress.proposals % len(self.population.islands))
                continue
            sample = self.progress.proposals
            self.progress.proposals += 1
            self.progress.samples += 1  # reserved before any await: concurrent workers never overshoot
            island = sample % len(self.population.islands)
            try:
                if await self._sample(island, sample) is Outcome.DUPLICATE:
                    self.progress.samples -= 1
                    self.progress.duplicates_in_a_row += 1
                else:
                    self.progress.duplicates_in_a_row = 0
            except BudgetSpent:  # the minutes ended while the model wrote, or nothing is left to tune
                self.progress.samples -= 1
                self._budget_left()  # records why the run stopped
                return
            finally:
                self._save_budget()
                if (sample + 1) % self.config.migration_every == 0:
                    self.population.migrate()
                if self.on_progress:
                    self.on_progress(self.progress)

    async def _sample(self, island: int, sample: int) -> Outcome | None:
        parent, attempt = await self._propose(island, sample)
        if attempt.status is None:
            attempt = await self._build_and_judge(attempt, island, sample)
        if attempt.status is Outcome.NO_CODE:
            self.last_error[island] = attempt.message
        elif attempt.status is Outcome.DUPLICATE and attempt.operator.startswith("llm-"):
            # A small model often copies the current block back (gossip: five answers of ten): say so.
            copied = attempt.source_hash == parent.source_hash
            which = "the current block, unchanged" if copied else "a block already tried"
            self.last_error[island] = (
                f"Your last answer was {which}: it was not run again. Write a genuinely different block "
                "that follows the idea to try."
            )
        if attempt.operator == TUNE:
            self.tuner.learn(parent, attempt)
        if self._banned(attempt):
            self.last_error[island] = (
                "Your last block behaves exactly like an upgrade the network deployed and then rolled back. "
                "Write a rule that makes different decisions."
            )
        self._store(attempt)
        if attempt.correct:
            self._admit(island, attempt, parent)
        return attempt.status

    async def _propose(self, island: int, sample: int) -> tuple[Attempt, Attempt]:
        """(parent, a tuned program or the model's answer); an answer without a block has ended already."""
        use_model = self.config.use_model
        # Until the model has answered once, a free worker asks it before anything else: a broken model
        # (a wrong key, a server down) ends the run in seconds, and a slow one starts writing while the
        # other worker judges the starting points.
        if use_model and not self.model.answered and not self.model.in_flight and not self.model.busy:
            return await self._ask_model(island, sample)
        if self.starts:
            baseline = self.population.baseline
            assert baseline is not None  # the run does not start without one
            return baseline, self._attempt(island, baseline, START, self.starts.pop(0))
        # A model that generates one answer at a time (the embedded one) is busy with another sample's
        # call: waiting for it would idle this worker for tens of seconds, a tune takes about two. With
        # nothing untried to tune, the worker does wait for the model.
        if not use_model or self.model.busy or self.rng.random() < self.config.tune_share:
            tuned = await self._tune(island)
            if tuned is not None:
                parent, block = tuned
                return parent, self._attempt(island, parent, TUNE, block)
        if not use_model:
            self._stop_reason = "the tuner has no untried setting left, and this run has no model"
            raise BudgetSpent
        return await self._ask_model(island, sample)

    async def _ask_model(self, island: int, sample: int) -> tuple[Attempt, Attempt]:
        parent = self.population.pick_parent(island)
        template = self.model.template(parent, sample)  # a template asks for a whole block
        edits = self.rng.random() < EDITS_SHARE
        mode = "edits" if edits and template is None else "block"
        inspirations = self.population.inspirations(island, parent)
        answer = await self._within_budget(
            self.model.propose(parent, inspirations, self.last_error[island], mode, sample, template)
        )
        self._spent(answer)
        attempt = self._attempt(island, parent, f"llm-{mode}", answer.block)
        attempt.tokens_in, attempt.tokens_out = answer.tokens_in, answer.tokens_out
        attempt.generation_s = answer.seconds
        problem = answer.problem or ""
        if answer.model_failed:  # recorded, not shown to the model as its own mistake
            attempt.end(Outcome.MODEL_FAILED, Stage.MODEL, problem)
        elif answer.block is None:  # what went wrong is stored in place of the source
            attempt.source = problem
            attempt.end(Outcome.NO_CODE, Stage.EXTRACT, problem)
        return parent, attempt

    async def _tune(self, island: int) -> tuple[Attempt, str] | None:
        """(parent, a tuned block): the best of a batch of settings measured from one slotted build when
        the parent has float constants a slot can replace, else one ordinary tune. Either way the block
        is then built, checked and judged like any candidate."""
        size = self.config.batch_settings
        batch = self.tuner.batch(island, size) if size > 0 else None
        if batch is not None:
            scores = await asyncio.to_thread(self._measure_settings, batch)
            if scores is None:
                self.tuner.unslottable.add(batch.parent.id)
            else:
                self.tuner.learn_settings(batch, scores)
                best = self._best_setting(batch, scores)
                if best is not None:
                    return batch.parent, best
        return self.tuner.tune(island)

    def _measure_settings(self, batch: SettingsBatch) -> list[float | None] | None:
        """Build the slotted parent once and measure every setting on the training workloads in a worker
        process; None when the slotted block does not build or the worker gives no answer."""
        built = self._build(batch.slotted)
        if isinstance(built, BuildFailure):
            logger.info("slotted build of candidate %s failed: %s", batch.parent.id, built.message)
            return None
        job = {
            "component": component_ref(self.component),
            "wasm": built.wasm,
            "settings": batch.values(self.config.language),
        }
        result = run_in_worker(measure_settings_job, job, self.config.eval_time_limit_s)
        if result is None or "error" in result:
            problem = "time limit" if result is None else result["error"].strip().splitlines()[-1]
            logger.info("settings of candidate %s not measured: %s", batch.parent.id, problem)
            return None
        return result["scores"]

    def _best_setting(self, batch: SettingsBatch, scores: list[float | None]) -> str | None:
        """The best measured setting, written in (judged next); the others are marked seen: measured, never
        tried again."""
        self.progress.settings_measured += len(scores)
        measured = [
            (score, block) for score, block in zip(scores, batch.blocks, strict=True) if score is not None
        ]
        sign = 1.0 if self.component.objective.direction == "min" else -1.0
        score, best = min(measured, key=lambda pair: sign * pair[0]) if measured else (None, None)
        language = self.config.language
        kept = source_hash(best, language) if best is not None else None
        for block in batch.blocks:  # measured: never offered again (the best is claimed when judged)
            if (digest := source_hash(block, language)) != kept:
                self.population.claim(digest)
        if best is None:
            return None
        logger.info(
            "tuned candidate %s: best of %d settings from one build scores %g",
            batch.parent.id,
            len(scores),
            score,
        )
        return best

    def _attempt(self, island: int, parent: Attempt | None, operator: str, block: str | None) -> Attempt:
        by_model = operator not in (TUNE, BASELINE, START)
        return Attempt(
            self.run_id,
            island,
            parent.id if parent else None,
            operator,
            self.config.language,
            source=block or "",
            source_hash=source_hash(block, self.config.language) if block is not None else "",
            provider=self.model.name if by_model else "-",
            model=self.model.model if by_model else "-",
        )

    async def _build_and_judge(self, attempt: Attempt, island: int, sample: int) -> Attempt:
        if not self.population.claim(attempt.source_hash):
            self.progress.duplicates += 1
            attempt.end(Outcome.DUPLICATE, Stage.DEDUP, "seen before; not evaluated again")
            return attempt
        return await self._judge_new(attempt, island, sample)

    async def _judge_new(self, attempt: Attempt, island: int, sample: int) -> Attempt:
        """Build (with fixes and repairs), then evaluate on the training workloads (claimed already)."""
        started = time.monotonic()
        attempt, built = await self._build_fixed(attempt)
        attempt.compile_s = time.monotonic() - started
        if isinstance(built, BuildFailure):
            self.progress.compile_failed += built.stage is Stage.COMPILE
            self.last_error[island] = f"{built.message}\n{built.log}".strip()
            attempt.failed(built)
            return attempt
        self.progress.compiled += 1
        took, size = attempt.compile_s, len(built.wasm)
        logger.info("sample %d: compiled in %.2fs, %d bytes, SHA-256 %s", sample, took, size, built.sha256)
        evaluation = await self._judge_on_training(attempt, built)
        if not evaluation.correct:
            self.last_error[island] = failing_case(evaluation)
        return attempt

    async def _judge_on_training(self, attempt: Attempt, built: BuiltModule) -> Evaluation:
        """The correctness cascade and the training workloads, in a worker; the attempt takes the verdict."""
        evaluation = await self.executor.evaluate(
            self.component,
            attempt.source,
            self.config.language,
            Split.TRAIN,
            built=built,
            random_cases=self.config.random_cases,
            time_limit_s=self.config.eval_time_limit_s,
        )
        attempt.judged(evaluation, built.sha256)
        return evaluation

    async def _build_fixed(self, attempt: Attempt) -> tuple[Attempt, BuiltModule | BuildFailure]:
        """Build; a compile error gets rustc's fixes, then the model's repairs (never for a tuned block)."""
        built = await asyncio.to_thread(self._build, attempt.source)
        attempt, built = await fix_with_rustc(
            self.component, attempt, built, self.compile_options, self.population
        )
        repairs = 0
        while (
            isinstance(built, BuildFailure)
            and built.stage is Stage.COMPILE
            and attempt.operator not in (TUNE, START)
            and self.config.use_model
            and repairs < self.config.repair_tries
        ):
            repairs += 1
            answer = await self._within_budget(
                self.model.repair(attempt.source, built.log, self.rng.randrange(1 << 30))
            )
            self._spent(answer)
            attempt.tokens_in += answer.tokens_in
            attempt.tokens_out += answer.tokens_out
            attempt.generation_s += answer.seconds
            if answer.block is None:
                break
            repaired = attempt.revised(answer.block, attempt.operator + "+repair")
            if not self.population.claim(repaired.source_hash):
                break
            attempt = repaired
            built = await asyncio.to_thread(self._build, attempt.source)
        return attempt, built

    def _build(self, block: str) -> BuiltModule | BuildFailure:
        return build_candidate(self.component, block, self.config.language, self.compile_options)

    def _spent(self, answer: Answer) -> None:
        self.progress.tokens_in += answer.tokens_in
        self.progress.tokens_out += answer.tokens_out

    def _admit(self, island: int, attempt: Attempt, parent: Attempt) -> None:
        self.progress.correct += 1
        self.last_error[island] = None
        if attempt.score == parent.score and attempt.operator not in (TUNE, MIGRANT):
            # Small models often rewrite the parent into an equivalent: say so, or it keeps doing it.
            self.last_error[island] = (
                "Your last block was correct but scored exactly what its parent scored "
                f"({attempt.score:g}): it made the same decisions. Write a genuinely different rule, "
                "not a rescaling of the same one."
            )
        self.population.admit(island, attempt)
        self.population.remember_tunable(island, attempt)
        self._measured.setdefault(attempt.source_hash, attempt)
        if attempt.operator != TUNE:
            self.tuner.introduce(island, attempt)
        proven = self.proven
        self._consider(attempt)
        if self.proven is attempt and proven is not attempt and attempt.operator != MIGRANT:  # a new own best
            self.exchange.offer(attempt, self._lineage(attempt))
        improvement = attempt.improvement_pct or 0.0
        if improvement > self.progress.best_improvement_pct:
            self.progress.best_improvement_pct = improvement
            if self.progress.first_improvement_s is None:
                self.progress.first_improvement_s = self._elapsed()

    def _consider(self, attempt: Attempt) -> None:
        """Keep the best correct program whose training gain is shown instance by instance, and that beats
        the deployed block (which itself is never proposed again)."""
        proven = self.proven
        if attempt.source_hash == self.deployed_hash:  # measured now: what is proven must beat it too
            self.proven = None
            for measured in list(self._measured.values()):
                if measured.source_hash != self.deployed_hash:
                    self._consider(measured)
            return
        score = attempt.score
        if score is None or not shown_in_training((attempt.metrics or {}).get("aggregate") or {}):
            return
        if not self._beats_deployed(attempt):
            return
        if proven is None or proven.score is None or self.component.objective.better(score, proven.score):
            self.proven = attempt

    def _store(self, attempt: Attempt) -> None:
        attempt.generation = self.progress.proposals
        attempt.id = self.store.add(attempt)
        if attempt.source_hash:
            self._links[attempt.id] = (attempt.source_hash, attempt.parent_id)

    # ------------------------------------------------------------------------------ the baseline

    async def _measure_baseline(self) -> None:
        block = self.component.baseline_block(self.config.language)
        evaluation = await self._evaluate(block, Split.TRAIN)
        attempt = self._attempt(0, None, BASELINE, block)
        self.population.claim(attempt.source_hash)
        attempt.judged(evaluation)
        self._store(attempt)
        if attempt.correct:
            self.population.seed(attempt)
            self._measured[attempt.source_hash] = attempt

    def _resume(self, run_id: str) -> None:
        run = self.store.resume_run(run_id)
        self.run_id = run.run_id
        attempts = self.store.candidates(run_id)
        self.population.seen = {a.source_hash for a in attempts if a.source_hash}
        self.progress.proposals = sum(1 for a in attempts if a.operator != BASELINE)
        self.progress.samples = sum(
            1 for a in attempts if a.operator != BASELINE and a.status != Outcome.DUPLICATE
        )
        self.progress.tokens_in = sum(a.tokens_in for a in attempts)
        self.progress.tokens_out = sum(a.tokens_out for a in attempts)
        self._elapsed_before = run.elapsed_s or 0.0
        islands = len(self.population.islands)
        for attempt in attempts:
            if not attempt.correct or attempt.score is None:
                continue
            if attempt.operator == BASELINE:
                self.population.seed(attempt)
                continue
            self.population.admit(attempt.island % islands, attempt)
            self.population.remember_tunable(attempt.island % islands, attempt)
            self._consider(attempt)
            self.progress.correct += 1
            improvement = attempt.improvement_pct or 0.0
            self.progress.best_improvement_pct = max(self.progress.best_improvement_pct, improvement)
        samples, correct = self.progress.samples, self.progress.correct
        logger.info("resuming run %s: %d samples done, %d correct", run_id, samples, correct)
