"""The operators that make new programs from old ones: the model, rustc's own fixes, and the tuner.

    model.propose(parent, inspirations, last_error, mode, sample, ...) -> Answer a better block, asked for
    model.repair(block, compile_log) -> Answer                                  the block, made to compile
    fix_with_rustc(component, attempt, built, ...)                               rustc's suggestions applied
    Tuner(population, ...).tune(island) -> (parent, block) | None               constants re-tuned, no model
    tuner.batch(island, size) -> SettingsBatch | None                            many settings, one build
    tuner.learn(parent, tuned)                                                   which constants are structure

A model answer is prompted with the parent, its measured scores, good programs from other islands, the
island's last failure and, in turn, one of the component's directions. A failed model call (a timeout,
a crashed model worker, a server error) is an answer without a block that says what went wrong; the
search records it and goes on, and MAX_CONSECUTIVE_LLM_ERRORS in a row end the run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Collection
from dataclasses import dataclass

from ..components import Component
from ..languages import source_hash
from ..llm.base import LLMError, Message
from ..models import CodeLanguage
from ..outcome import Outcome, Stage
from ..toolchain import CompileOptions
from .attempt import BASELINE, Attempt
from .build import BuildFailure, BuiltModule, autofix_block, build_candidate
from .extract import extract_candidate
from .population import Population
from .prompts import ParentInfo, build_messages, repair_messages
from .slots import bake, slottable, slotted
from .tuning import (
    Literal,
    can_retune,
    changed_literals,
    float_setting,
    literal_value,
    numeric_literals,
    retune,
    tunable_literals,
)

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_LLM_ERRORS = 3
AUTOFIX_ROUNDS = 3  # one fix can uncover the next error
WIDE_JUMP = 10.0
WIDE_JUMP_CHANCE = 1 / 3
# From a plateau (a program that decides exactly like the baseline) the constants are far from where
# they matter (a small model writes thresholds like 0.005 where 20 is needed): jump across decades.
PLATEAU_JUMP = 1000.0


@dataclass(frozen=True)
class SettingsBatch:
    """Settings of one parent's float constants, measured from one build of its slotted block."""

    parent: Attempt
    literals: list[Literal]  # the slotted constants, in slot order
    slotted: str  # the parent reading them from memory (evolution.slots)
    settings: list[list[str]]  # per setting, the text of each constant
    blocks: list[str]  # per setting, the parent with that setting written in

    def values(self, language: CodeLanguage) -> list[list[float]]:
        return [[literal_value(text, language) for text in texts] for texts in self.settings]


@dataclass(frozen=True)
class Answer:
    """What one model call gave: a block, or why there is none."""

    block: str | None
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    problem: str | None = None  # no block: the extraction's complaint, or the failed call's error
    model_failed: bool = False  # the call itself failed (not the model's own mistake)


class ModelOperator:
    """Asks the language model for new blocks and for repairs, and counts its failures in a row."""

    def __init__(
        self,
        component: Component,
        provider,
        *,
        language: CodeLanguage,
        problem: str,
        seed: int,
        max_new_tokens: int,
        temperature: float,
    ):
        self.component = component
        self.provider = provider
        self.name = getattr(provider, "name", "?")
        self.model = getattr(provider, "model", "?")
        self.language = language
        self.problem = problem
        self.seed = seed
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.failures_in_a_row = 0
        self.gave_up: str | None = None  # why the run must end: the model failed too often in a row
        self.answered = False  # the model has answered at least once in this run
        self.in_flight = 0  # calls sent and not yet answered

    @property
    def busy(self) -> bool:
        """A model that generates one answer at a time (the embedded one) is busy with another call."""
        return bool(getattr(self.provider, "busy", False))

    def _slot(self, sample: int) -> int | None:
        """The index of this sample's direction: the directions in turn, one turn in (len + 1) left free
        for the model's own ideas (None then, and for a language without directions)."""
        count = len(self.component.directions_for(self.language))
        slot = sample % (count + 1)
        return slot if slot < count else None

    def direction(self, sample: int) -> str | None:
        slot = self._slot(sample)
        return None if slot is None else self.component.directions_for(self.language)[slot]

    def template(self, parent: Attempt, sample: int) -> str | None:
        """The block shown in place of a parent that is still the baseline: this sample's direction with
        its rule left as a hole (Component.templates), if it has one. A small model shown the baseline
        tends to copy it back; given the hole, it writes a rule. The answer is a whole block."""
        slot = self._slot(sample)
        if parent.operator != BASELINE or slot is None:
            return None
        templates = self.component.templates_for(self.language)
        return templates[slot] if slot < len(templates) else None

    async def propose(
        self,
        parent: Attempt,
        inspirations: list[Attempt],
        last_error: str | None,
        mode: str,
        sample: int,
        template: str | None = None,
    ) -> Answer:
        """A better block than `parent`; `template` (see template()) is shown in its place."""
        direction = self.direction(sample)
        messages = build_messages(
            self.component,
            self.language,
            problem=self.problem,
            parent=_shown(parent),
            inspirations=[_shown(m) for m in inspirations],
            last_error=last_error,
            mode=mode,
            direction=direction,
            template=template,
        )
        idea = f", idea: {direction[:60]}..." if direction else ""
        size = sum(len(m.content) for m in messages)
        logger.info("sample %d: built prompt (%d chars) from candidate %d%s", sample, size, parent.id, idea)
        return await self._ask(messages, template or parent.source, sample, log_as=f"sample {sample}")

    async def repair(self, block: str, compile_log: str, seed: int) -> Answer:
        messages = repair_messages(self.component, self.language, block, compile_log)
        return await self._ask(messages, block, seed)

    async def _ask(self, messages: list[Message], parent_block: str, sample: int, log_as: str = "") -> Answer:
        started = time.monotonic()
        self.in_flight += 1
        try:
            completion = await self.provider.complete(
                messages,
                max_tokens=self.max_new_tokens,
                temperature=self.temperature,
                seed=self.seed * 100_003 + sample,
            )
        except LLMError as error:
            self.failures_in_a_row += 1
            logger.warning("model call failed (%d in a row): %s", self.failures_in_a_row, error)
            if self.failures_in_a_row >= MAX_CONSECUTIVE_LLM_ERRORS:
                self.gave_up = f"the model failed {self.failures_in_a_row} times in a row: {error}"
            seconds = time.monotonic() - started
            return Answer(None, seconds=seconds, problem=f"the model call failed: {error}", model_failed=True)
        finally:
            self.in_flight -= 1
        seconds = time.monotonic() - started
        self.failures_in_a_row = 0
        self.answered = True
        if log_as:
            chars, out = len(completion.text), completion.tokens_out
            logger.info("%s: generated %d chars in %.2fs (%d tokens out)", log_as, chars, seconds, out)
        extraction = extract_candidate(completion.text, parent_block, self.language, self.component)
        problem = None if extraction.block is not None else extraction.error or "no code in the answer"
        return Answer(extraction.block, completion.tokens_in, completion.tokens_out, seconds, problem)


def _shown(member: Attempt) -> ParentInfo:
    """A program as the prompt shows it: its block, its scores and its improvement."""
    summary = f"improvement over the baseline on training workloads: {member.improvement_pct or 0.0:+.3f} %"
    return ParentInfo(member.source, member.scores, summary)


async def fix_with_rustc(
    component: Component,
    attempt: Attempt,
    built: BuiltModule | BuildFailure,
    options: CompileOptions | None,
    population: Population,
) -> tuple[Attempt, BuiltModule | BuildFailure]:
    """Before any model repair: apply rustc's own MachineApplicable suggestions (`0` -> `0.0`, a missing
    `mut`...) to a block that does not compile, up to AUTOFIX_ROUNDS times. A fixed block seen before in
    the run is not built again."""
    fixed = attempt
    for _ in range(AUTOFIX_ROUNDS):
        if not (isinstance(built, BuildFailure) and built.stage is Stage.COMPILE):
            break
        block = await asyncio.to_thread(autofix_block, component, fixed.source, fixed.language, options)
        if block is None:
            break
        candidate = fixed.revised(block, attempt.operator + "+rustfix")
        if not population.claim(candidate.source_hash):
            break
        fixed = candidate
        built = await asyncio.to_thread(build_candidate, component, fixed.source, fixed.language, options)
    return fixed, built


class Tuner:
    """Re-tunes the numeric constants of a correct program: no model call, about two seconds a sample.

    It proposes only settings not tried before in the run (`population.seen`), and only of constants that
    are really tunable: `tuning` leaves patterns, indices, shifts and hash constants alone by their place,
    the tuner leaves the component's interface codes alone by their value (raft's outcome `2`), and it
    learns the rest from what it measures. A literal that was changed in tunes that all
    broke the program (wrong answers, no build) and in none that stayed correct is structure (an outcome
    code, a sentinel) and is kept as it is in every program of the same shape. A literal of one program
    is inert there when INERT_AFTER correct tunes of that program off the baseline's plateau changed it
    and left every training score exactly as it was, and none moved one (a term added to every peer's
    cost alike, an epsilon beside numbers a thousand times larger): it is kept in that program, and free
    again in its tuned children, where the other constants have moved. With nothing untried left,
    `tune` says so (None) and the search asks the model instead: it never spins on duplicates."""

    DRAWS = 16  # tries for an untried setting before the tuner gives the turn back to the model
    # Tune turns a newly proposed structure (a model's program, a starting point) gets before the tuner
    # goes back to the elites: a new rule is judged with its first-guess constants, and without its own
    # turns it never meets the tuned incumbent on equal terms (a seed-2 ablation run: 16 model answers,
    # none tuned, the winner a tuned starting point). With slots, a turn measures a batch of settings.
    FRESH_TURNS = 2
    # Correct tunes of one program that changed a literal and left every score exactly unchanged before
    # the literal is taken for inert in it. In the gossip template run (seed 3) the tuner spent 83 tunes
    # on two such literals of one parent, every one scoring the same; a live constant of a discrete
    # objective (bins) can also leave the scores alone for a small step, so it takes several, and one
    # tune that moves a score makes the literal live in that program for good.
    INERT_AFTER = 4

    def __init__(
        self,
        population: Population,
        language: CodeLanguage,
        rng: random.Random,
        exploit: float,
        codes: Collection[int] = (),
    ):
        self.population = population
        self.language = language
        self.rng = rng
        self.exploit = exploit
        self.codes = frozenset(codes)  # Component.interface_codes: never tuned
        # shape (the block with its numbers blanked) -> literal index -> [tunes that broke, that held]
        self._record: dict[str, dict[int, list[int]]] = {}
        # a program's source hash -> literal index -> [its correct tunes off the plateau that left every
        # score as it was, that moved one]
        self._effect: dict[str, dict[int, list[int]]] = {}
        self.unslottable: set[int | None] = set()  # parents whose slotted block did not build
        self._fresh: dict[int, list[_Fresh]] = {}  # island -> the new structures waiting for their turns

    def introduce(self, island: int, member: Attempt) -> None:
        """A new structure with constants: it takes the island's next FRESH_TURNS tune turns."""
        if self.has_constants(member):
            self._fresh.setdefault(island, []).append(_Fresh(member, self.FRESH_TURNS))

    def keep(self, block: str) -> set[int]:
        """Start offsets of the block's literals to leave alone: the component's interface codes, and
        those that measurements showed to be structure, or inert in this very block."""
        record = self._record.get(_shape(block, self.language), {})
        literals = numeric_literals(block, self.language)
        structure = {literals[i].start for i, (broke, held) in record.items() if broke and not held}
        codes = {
            literal.start for literal in literals if not literal.is_float and literal.value in self.codes
        }
        return structure | codes | self.inert(block)

    def inert(self, block: str) -> set[int]:
        """Start offsets of the literals found inert in this very block (see the class docstring)."""
        effect = self._effect.get(source_hash(block, self.language), {})
        literals = numeric_literals(block, self.language)
        return {
            literals[i].start
            for i, (still, moved) in effect.items()
            if still >= self.INERT_AFTER and not moved and i < len(literals)
        }

    def has_constants(self, member: Attempt) -> bool:
        return can_retune(member.source, self.language, self.keep(member.source))

    def learn(self, parent: Attempt, tuned: Attempt) -> None:
        """What a judged tune says about the literals it changed: it broke the program, or it held (still
        correct) and, off the baseline's plateau, moved a training score or left them all as they were.
        On the plateau an unchanged score says nothing: a rule stays inert there until all its constants
        are in range together."""
        if tuned.status not in _BROKE and not tuned.correct:
            return  # a duplicate: says nothing about the constants
        changed = changed_literals(parent.source, tuned.source, self.language)
        if not changed:
            return
        held = tuned.status not in _BROKE
        plateau = self.on_plateau(parent)
        record = self._record.setdefault(_shape(parent.source, self.language), {})
        effect = self._effect.setdefault(source_hash(parent.source, self.language), {})
        for index in changed:
            record.setdefault(index, [0, 0])[held] += 1
            if held and not plateau:
                effect.setdefault(index, [0, 0])[tuned.scores != parent.scores] += 1

    def learn_settings(self, batch: SettingsBatch, scores: list[float | None]) -> None:
        """What a batch's settings measured from one build say: only the best is judged (and learned
        from, with `learn`), but a setting whose aggregate score differs from the parent's shows that the
        literals it changed move a score, even when the best of the batch tied the parent."""
        parent = batch.parent
        if parent.score is None or self.on_plateau(parent):
            return
        effect = self._effect.setdefault(source_hash(parent.source, self.language), {})
        for block, score in zip(batch.blocks, scores, strict=True):
            if score is None or score == parent.score:
                continue
            for index in changed_literals(parent.source, block, self.language) or ():
                effect.setdefault(index, [0, 0])[1] += 1

    def on_plateau(self, member: Attempt) -> bool:
        """Whether `member` decides exactly like the baseline on the training workloads."""
        baseline = self.population.baseline
        return baseline is not None and member.scores == baseline.scores

    def batch(self, island: int, size: int) -> SettingsBatch | None:
        """Up to `size` untried settings of one parent's float constants, to be measured from a single
        build (evolution.slots), or None when the parent has no float a slot can replace (or its slotted
        form did not build before): then the ordinary `tune` takes the turn."""
        chosen = self._choose(island)
        if chosen is None:
            return None
        parent, plateau = chosen
        if parent.id in self.unslottable:
            return None
        keep = self.keep(parent.source)
        tunable = tunable_literals(parent.source, self.language, keep)
        floats = [literal for literal in tunable if literal.is_float]
        usable = slottable(parent.source, self.language, floats)
        if not usable:
            return None
        others = {literal.start for literal in tunable if literal not in usable}
        seen = self.population.seen
        settings: list[list[str]] = []
        blocks: list[str] = []
        hashes: set[str] = set()
        for _ in range(3 * size):
            if plateau:
                drawn = float_setting(parent.source, self.language, self.rng, 3, PLATEAU_JUMP, keep | others)
            else:
                scale = WIDE_JUMP if self.rng.random() < WIDE_JUMP_CHANCE else 2.0
                drawn = float_setting(parent.source, self.language, self.rng, None, scale, keep | others)
            if drawn is None:
                return None
            literals, texts = drawn
            block = bake(parent.source, literals, texts)
            digest = source_hash(block, self.language)
            if digest in seen or digest in hashes:
                continue
            hashes.add(digest)
            settings.append(texts)
            blocks.append(block)
            if len(settings) == size:
                break
        if not settings:
            return None
        self._used(island, parent)
        return SettingsBatch(parent, usable, slotted(parent.source, self.language, usable), settings, blocks)

    def _used(self, island: int, parent: Attempt) -> Attempt:
        """A tune of `parent` was proposed: one of its turns, if it is the island's new structure."""
        fresh = self._fresh.get(island)
        if fresh and fresh[0].member is parent:
            fresh[0].turns -= 1
        return parent

    def _choose(self, island: int) -> tuple[Attempt, bool] | None:
        """(a parent with constants, whether it sits on the baseline's plateau), as `tune` chooses: a new
        structure's turns first (introduce), then the elites and the recent programs."""
        population = self.population
        fresh = self._fresh.get(island)
        while fresh:
            member = fresh[0].member
            if fresh[0].turns <= 0 or not self.has_constants(member):
                fresh.pop(0)
                continue
            return member, self.on_plateau(member)
        elites = [m for m in population.islands[island] if self.has_constants(m)]
        recent = [
            m
            for m in population.tunable[island]
            if all(m.id != e.id for e in elites) and self.has_constants(m)
        ]
        pool = elites + recent
        if not pool:
            return None
        parent = elites[0] if elites and self.rng.random() < self.exploit else self.rng.choice(pool)
        return parent, self.on_plateau(parent)

    def tune(self, island: int) -> tuple[Attempt, str] | None:
        """(parent, its block with constants re-tuned, a setting not tried before), or None when the
        island has no program with a constant to tune or no untried setting turned up in DRAWS draws.
        The parent is the best elite that has constants (exploit of the time), else any of those elites
        or of the recent correct programs with constants. The step is wide (factors up to 10) one time in
        WIDE_JUMP_CHANCE, and spans decades (up to PLATEAU_JUMP) when the parent behaves exactly like the
        baseline: a model's first guess at a threshold or a penalty is often off by orders of magnitude,
        and a small step from a plateau stays on it."""
        for _ in range(self.DRAWS):
            chosen = self._choose(island)
            if chosen is None:
                return None
            parent, plateau = chosen
            keep = self.keep(parent.source)
            if plateau:
                # A rule such as "penalise gaps below T by P" stays inert until T and P are *both* in
                # range, so from a plateau every constant (up to three) moves at once.
                block = retune(parent.source, self.language, self.rng, count=3, scale=PLATEAU_JUMP, keep=keep)
            else:
                scale = WIDE_JUMP if self.rng.random() < WIDE_JUMP_CHANCE else 2.0
                block = retune(parent.source, self.language, self.rng, scale=scale, keep=keep)
            if block is not None and source_hash(block, self.language) not in self.population.seen:
                return self._used(island, parent), block
        fresh = self._fresh.get(island)
        if fresh and chosen is not None and fresh[0].member is chosen[0]:
            fresh.pop(0)  # nothing untried near the new structure: its turns go back to the elites
        return None


@dataclass
class _Fresh:
    """A new structure and the tune turns it has left (Tuner.introduce)."""

    member: Attempt
    turns: int


# Outcomes of a tune that say the changed constants were not free to change.
_BROKE = frozenset({Outcome.INCORRECT, Outcome.COMPILE_FAILED, Outcome.REJECTED, Outcome.TIME_LIMIT})


def _shape(block: str, language: CodeLanguage) -> str:
    """The block with every numeric literal blanked: the programs a tuner's lessons apply to."""
    out, cursor = [], 0
    for literal in numeric_literals(block, language):
        out += [block[cursor : literal.start], "#"]
        cursor = literal.end
    return "".join(out) + block[cursor:]
