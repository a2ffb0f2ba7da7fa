"""The component contract: what a node runs, and what the engine may replace.

A component declares everything needed to judge a candidate without trusting it:

- `name` and the seed's `aliases` that map to it,
- a `skeleton` per supported language: a complete program with exactly one EVOLVE block, the only
  region a candidate may change; the rest (memory layout, exported entry points) is fixed harness.
  Skeletons are real files in the component's package (`skeleton.rs`, `skeleton.c`, `skeleton.wat`), so
  rustfmt, clang and wat2wasm can check them, read once through `importlib.resources`,
- the `exports` (ABI) the module must have, exactly, and its memory bound,
- the baseline: the block inside each skeleton as shipped (version 0),
- a Python `reference` implementation (the oracle) and correctness `cases` (fixed + seeded random),
- training and held-out `workloads`, and the `objective` measured on them,
- for heuristic components, `check_output`: what counts as a valid answer.

Two kinds. *Exact* components must return what the reference returns on every case, and win on cost
(fuel). *Heuristic* components must return valid output, and win on quality (their objective metric).

The host side of a call (writing inputs into linear memory, calling, reading outputs back) is the
component's `call`; everything here runs inside the sandbox, so a candidate can never touch the host.
"""

from __future__ import annotations

import functools
import re
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any, TypeVar

from ..errors import InvalidInput, SynapseError, UsageError
from ..models import CodeLanguage
from ..wasm.policy import ExportSpec, WasmPolicy
from ..wasm.sandbox import Instance, SandboxLimits

_T = TypeVar("_T")

EVOLVE_START = "EVOLVE-BLOCK-START"
EVOLVE_END = "EVOLVE-BLOCK-END"
SKELETON_FILES = {
    CodeLanguage.RUST: "skeleton.rs",
    CodeLanguage.C: "skeleton.c",
    CodeLanguage.WAT: "skeleton.wat",
}


class ComponentKind(str, Enum):
    EXACT = "exact"
    HEURISTIC = "heuristic"


class Split(str, Enum):
    TRAIN = "train"
    HELDOUT = "heldout"


@dataclass(frozen=True)
class Objective:
    metric: str  # the per-workload number that is compared, e.g. "bins", "fuel", "t99"
    direction: str  # "min" or "max"
    aggregation: str  # how workloads combine: "mean" or "sum"
    description: str

    def better(self, candidate: float, baseline: float) -> bool:
        return candidate < baseline if self.direction == "min" else candidate > baseline

    def improvement_pct(self, candidate: float, baseline: float) -> float:
        """Positive when the candidate is better, in percent of the baseline."""
        if baseline == 0:
            return 0.0
        change = (baseline - candidate) if self.direction == "min" else (candidate - baseline)
        return 100.0 * change / abs(baseline)

    def aggregate(self, values: list[float]) -> float:
        return sum(values) / len(values) if self.aggregation == "mean" else float(sum(values))


@dataclass(frozen=True)
class Case:
    """One correctness case: an input for the module and the reference."""

    id: str
    input: Any


@dataclass(frozen=True)
class Workload:
    """One measured workload. `origin` says how to rebuild it (a seed, or a data file and its hash)."""

    id: str
    split: Split
    origin: str
    seed: int | None
    input: Any = field(repr=False, compare=False)


class CaseFailure(SynapseError):
    """A candidate's output is wrong or invalid; the message says how (never an error of the host)."""


@dataclass(frozen=True)
class CallOutput:
    """What one host→module round trip produced: the decoded output and the fuel it burnt."""

    value: Any
    fuel: int


class Component(ABC):
    name: str
    aliases: tuple[str, ...] = ()
    kind: ComponentKind
    description: str
    objective: Objective
    exports: tuple[ExportSpec, ...]
    languages: tuple[CodeLanguage, ...] = (CodeLanguage.RUST, CodeLanguage.C)
    max_memory_pages: int = 1024
    # Ideas that are known to matter for this problem, given to the model with the goal: domain
    # knowledge a human expert would put in the prompt (never data from the held-out workloads).
    hints: tuple[str, ...] = ()
    # Concrete directions to try, one per prompt in turn: a small model follows one specific idea far
    # better than a list of them, and rotating them spreads the population over different structures.
    # They show code shapes in Rust; `c_directions` show them in C (see directions_for).
    directions: tuple[str, ...] = ()
    # The same kind of ideas with C code shapes, for a C search.
    c_directions: tuple[str, ...] = ()
    # Complete blocks a search may start from (SearchConfig.starting_points): each direction's shape with
    # the plainest rule it describes written in and named constants for the tuner. Rust; C in
    # `c_starting_points` (see starting_points_for).
    starting_points: tuple[str, ...] = ()
    c_starting_points: tuple[str, ...] = ()
    # Per direction (same order; None where a direction has none): the direction's shape as a whole block
    # with its rule left as a hole for the model to write. A parent that is still the baseline is shown
    # as this template instead: a 1.5B model shown gossip's random baseline copied it back, unchanged, in
    # 10 of 13 answers of a 20-minute run (seed 3, 2026-12-04). Rust; C in `c_templates` (templates_for).
    templates: tuple[str | None, ...] = ()
    c_templates: tuple[str | None, ...] = ()
    # Limits of one call into the module; generous for the baseline at the largest workload.
    limits: SandboxLimits = SandboxLimits()
    # For a module that draws random numbers from seeds the host hands it: how many other streams the
    # held-out check measures the baseline under, so a gain must beat what reseeding alone produces.
    random_streams: int = 0
    # Integers that name things in the component's interface (a vote's choice, a tally's outcome). A
    # literal of one of these values in a block is read as such a code, and the tuner leaves it alone:
    # changing an outcome code is a wrong program, never a better one.
    interface_codes: frozenset[int] = frozenset()

    # ------------------------------------------------------------------ what subclasses provide

    def skeleton(self, language: CodeLanguage) -> str:
        """The complete program with the baseline between the EVOLVE markers: the skeleton file shipped
        in the package of the component's class (a component without such files overrides this)."""
        if language not in self.languages:
            supported = ", ".join(lang.value for lang in self.languages)
            raise UsageError(
                f"{self.name} has no {language.value} skeleton; supported languages: {supported}"
            )
        return read_skeleton(sys.modules[type(self).__module__].__package__, SKELETON_FILES[language])

    @abstractmethod
    def reference(self, input: Any) -> Any:
        """The oracle: the exact answer (exact components) or the baseline's answer (heuristic)."""

    @abstractmethod
    def fixed_cases(self) -> list[Case]:
        """Edge cases, always run first (quick ones first: the cascade stops at the first failure)."""

    @abstractmethod
    def random_cases(self, seed: int, count: int) -> list[Case]:
        """Seeded random cases; the same seed gives the same cases on every machine."""

    @abstractmethod
    def call(self, instance: Instance, input: Any) -> CallOutput:
        """Write input into the module, call it, read the output back. Raises CaseFailure on a trap
        or on output that cannot even be decoded (out-of-range pointers, wrong lengths)."""

    def scale_cases(self) -> list[Case]:
        """Inputs at the largest size the protocol admits, run after the other cases: a candidate must finish
        them within `limits`, with a valid output. A block cheap enough on the cases and the training sizes
        can cost more per item as inputs grow (a loop over every bin inside the loop over bins) and run out
        of fuel on the first large batch; without these cases a search could crown it. Default: none."""
        return []

    @abstractmethod
    def workloads(self, split: Split) -> list[Workload]:
        """Training workloads (generated with our own seeds) or held-out ones (never trained on)."""

    @abstractmethod
    def measure(self, instance: Instance, workload: Workload) -> dict[str, Any]:
        """Run one workload; returns metrics, at least `objective.metric` and "fuel". Raises CaseFailure
        when the output is invalid (an invalid answer has no score, whatever it claims). A workload made
        of several generated instances also returns "items": the objective's value on each instance, in
        order, so a gain can be tested pair by pair (evolution.significance)."""

    def measure_reseeded(self, instance: Instance, workload: Workload, stream: int) -> dict[str, Any]:
        """`measure` with the module's random numbers drawn from another stream (1, 2, ...): the seeds a
        component hands the module, mixed with `stream`. Only components with `random_streams` > 0."""
        raise NotImplementedError(f"{self.name} hands its module no random seeds")

    def check_output(self, input: Any, output: Any) -> None:
        """Raise CaseFailure unless output is acceptable. Exact components: equal to the reference."""
        expected = self.reference(input)
        if output != expected:
            raise CaseFailure(f"expected {summarize(expected)}, got {summarize(output)}")

    # ------------------------------------------------------------------ derived, shared

    def wasm_policy(self) -> WasmPolicy:
        return WasmPolicy(required_exports=self.exports, max_memory_pages=self.max_memory_pages)

    def directions_for(self, language: CodeLanguage) -> tuple[str, ...]:
        """The directions whose code shapes are written in `language` (none for a language without)."""
        return _in_language(language, self.directions, self.c_directions)

    def starting_points_for(self, language: CodeLanguage) -> tuple[str, ...]:
        """The starting blocks written in `language` (none for a language without)."""
        return _in_language(language, self.starting_points, self.c_starting_points)

    def templates_for(self, language: CodeLanguage) -> tuple[str | None, ...]:
        """The templates of `language`'s directions, in their order (none for a language without)."""
        return _in_language(language, self.templates, self.c_templates)

    def baseline_block(self, language: CodeLanguage) -> str:
        return split_skeleton(self.skeleton(language))[1]

    def info(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "aliases": list(self.aliases),
            "objective": f"{self.objective.direction} {self.objective.aggregation} {self.objective.metric}",
            "languages": [language.value for language in self.languages],
            "exports": [str(spec) for spec in self.exports],
            "description": self.description,
        }


def _in_language(language: CodeLanguage, rust: tuple[_T, ...], c: tuple[_T, ...]) -> tuple[_T, ...]:
    """Of a component's texts written per language (Rust, C), those in `language`; none for another."""
    return {CodeLanguage.RUST: rust, CodeLanguage.C: c}.get(language, ())


@functools.cache
def read_skeleton(package: str, file_name: str) -> str:
    """A skeleton file of a component package, read once: prompts and builds ask for it many times."""
    return resources.files(package).joinpath(file_name).read_text(encoding="utf-8")


def summarize(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


# ---------------------------------------------------------------------- EVOLVE blocks and candidates

_MARKER_LINE = re.compile(rf"^[^\n]*\b({EVOLVE_START}|{EVOLVE_END})\b[^\n]*$", re.MULTILINE)


class CandidateShapeError(InvalidInput):
    """A candidate that is neither a block nor the skeleton with only its block changed."""


def split_skeleton(program: str) -> tuple[str, str, str]:
    """(head including the start marker line, block, tail from the end marker line on)."""
    markers = list(_MARKER_LINE.finditer(program))
    kinds = [m.group(1) for m in markers]
    if kinds != [EVOLVE_START, EVOLVE_END]:
        raise CandidateShapeError(
            f"a program must have exactly one {EVOLVE_START} line followed by one {EVOLVE_END} line; "
            f"found {kinds or 'none'}"
        )
    start, end = markers
    head = program[: start.end() + 1]
    return head, program[start.end() + 1 : end.start()], program[end.start() :]


def _normalize(text: str) -> str:
    """Whitespace-insensitive form for comparing harness code (trailing spaces and blank lines)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def assemble(skeleton: str, candidate: str) -> str:
    """Put a candidate into the skeleton. A candidate is either just the block, or a whole program whose
    code outside the block is the skeleton's; a whole program that edits the harness is rejected."""
    head, _, tail = split_skeleton(skeleton)
    if EVOLVE_START not in candidate and EVOLVE_END not in candidate:
        return head + candidate.strip("\n") + "\n" + tail
    c_head, c_block, c_tail = split_skeleton(candidate)
    for part, ours, theirs in (("before", head, c_head), ("after", tail, c_tail)):
        if _normalize(ours) != _normalize(theirs):
            raise CandidateShapeError(
                f"the candidate changes code {part} the EVOLVE block; only the block between "
                f"{EVOLVE_START} and {EVOLVE_END} may change (send just the block, or the skeleton "
                f"unchanged around it)"
            )
    return head + c_block.strip("\n") + "\n" + tail
