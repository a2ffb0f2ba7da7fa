"""What an honest node checks before it votes on a code upgrade: everything, itself, within its own bounds.

A code_upgrade proposal claims "this module, whose SHA-256 is H, built from this source, is correct and
X% better, and here is the evidence". A node believes none of it, and lets none of it decide how much
checking is enough or how much the checking may cost. In order, stopping at the first stage that fails:

1. hash: the bytes it fetched hash to H, H is the module the evidence measured, the size matches;
2. static: the component is one this node runs (and the one the evidence is about), and the module
   passes this node's static checks for it (imports, exports, memory);
3. rebuild: the proposal's source, built here with this node's toolchain the way the engine builds a
   candidate (the component's skeleton around the block), gives exactly H; no source, no "yes": a
   voter must be able to read what it runs;
4. correctness: this node runs random cases of its *own* (its own count, drawn with its own secret
   seed, in a fresh instance), then re-runs the evidence's correctness cases exactly
   (evolution.evidence.reproduce);
5. evidence: the same re-run re-measures every workload, and every deterministic figure must be equal
   to the evidence's, bit for bit;
6. improvement: the re-measured improvement is positive, it is the one the proposal states, and where
   the workloads are made of generated instances it is skill, not luck: a paired test over the
   instances, and (for a module that draws random numbers) beyond what another random stream alone
   gives the baseline, both recomputed from this node's own re-run (evolution.significance).

What the checking may cost is this node's choice (VerifyLimits): the whole verification has a time
limit, the worker that re-runs the module a memory limit, and evidence asking for more random cases
than the node allows is refused before anything is built or run. A worker stopped by a limit is a "no"
saying which limit. A verdict never raises on bad input: a malformed proposal is a "no" with the
reason, not a crash.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

from ..components import CandidateShapeError, Component, assemble, get_component
from ..errors import UsageError
from ..evolution.build import BuildFailure, build_candidate
from ..evolution.evidence import case_demands, reproduce, too_many_random_cases
from ..evolution.measure import component_ref
from ..evolution.significance import luck
from ..models import CodeLanguage
from ..outcome import Stage
from ..text import last_lines
from ..toolchain import CompileOptions, CompileStatus, compile_source
from ..wasm.inspect import inspect_wasm
from .proposals import ProposalError, validate_code_upgrade_params

logger = logging.getLogger(__name__)

CHECKS = ("hash", "static", "rebuild", "correctness", "evidence", "improvement")
IMPROVEMENT_TOLERANCE = 1e-9
OWN_SEED_BITS = 53  # a JSON number holds it exactly anywhere (JavaScript included)
MAX_COMPILE_S = 60.0  # the toolchain's own default; the verification's time limit may cut it shorter


@dataclass(frozen=True)
class VerifyLimits:
    """What a verification may cost, and how much checking of its own this node adds: its choice alone."""

    time_limit_s: float = 600.0  # the whole verification: the rebuild, then the worker's re-run
    memory_bytes: int = 2 << 30  # the re-run worker's data limit (RLIMIT_DATA: heap and private mappings)
    own_random_cases: int = 200  # random correctness cases of this node's own, beyond the evidence's
    max_random_cases: int = 5000  # evidence asking for more random cases is refused without running anything
    own_seed: int | None = None  # None: a fresh secret seed per verification; set it to re-run a verdict's

    def __post_init__(self) -> None:
        def integer(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        problems = []
        if (
            not isinstance(self.time_limit_s, (int, float))
            or isinstance(self.time_limit_s, bool)
            or not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0)
        ):
            problems.append(f"time_limit_s must be a finite number > 0, got {self.time_limit_s!r}")
        if not integer(self.memory_bytes) or self.memory_bytes <= 0:
            problems.append(f"memory_bytes must be an integer > 0, got {self.memory_bytes!r}")
        for name in ("own_random_cases", "max_random_cases"):
            if not integer(getattr(self, name)) or getattr(self, name) < 0:
                problems.append(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.own_seed is not None and not integer(self.own_seed):
            problems.append(f"own_seed must be an integer or None, got {self.own_seed!r}")
        if problems:
            raise ValueError("impossible verification limits: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    ok: bool
    checks: dict[str, bool | None]  # each of CHECKS: True passed, False failed, None not reached
    reasons: list[str] = field(default_factory=list)
    improvement_pct: float | None = None  # as re-measured here
    seconds: float = 0.0
    # This node's own correctness cases: component.random_cases(own_seed, own_cases), run when the
    # correctness stage was reached; VerifyLimits(own_seed=..., own_random_cases=...) runs them again.
    own_seed: int | None = None
    own_cases: int = 0
    own_cases_passed: int | None = (
        None  # None: not run (an earlier stage failed, or the worker gave no answer)
    )
    limit: str | None = None  # "time" or "memory" when a limit of this node ended the verification
    worker_peak_rss_bytes: int | None = None  # the re-run worker's peak resident memory, when it answered
    limits: dict | None = None  # the VerifyLimits in force

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checks": dict(self.checks),
            "reasons": list(self.reasons),
            "improvement_pct": self.improvement_pct,
            "seconds": self.seconds,
            "own_seed": self.own_seed,
            "own_cases": self.own_cases,
            "own_cases_passed": self.own_cases_passed,
            "limit": self.limit,
            "worker_peak_rss_bytes": self.worker_peak_rss_bytes,
            "limits": dict(self.limits) if self.limits is not None else None,
        }


class _Stop(Exception):
    """A stage failed: its name and the reasons."""

    def __init__(self, check: str | None, reasons: list[str]):
        super().__init__(check)
        self.check = check
        self.reasons = reasons


def verify_code_upgrade(
    params: dict,
    wasm: bytes,
    *,
    limits: VerifyLimits | None = None,
    component: Component | None = None,
    time_limit_s: float | None = None,
) -> Verdict:
    """Check a code_upgrade's module, source and evidence on this node; ok only if every check passed.

    limits: this node's bounds and own case count (default VerifyLimits()); time_limit_s, when given,
    replaces limits.time_limit_s (the older way to say it)."""
    limits = limits or VerifyLimits()
    if time_limit_s is not None:
        limits = replace(limits, time_limit_s=time_limit_s)
    started = time.monotonic()
    own_seed = limits.own_seed if limits.own_seed is not None else secrets.randbits(OWN_SEED_BITS)
    verdict = Verdict(
        False,
        {name: None for name in CHECKS},
        own_seed=own_seed,
        own_cases=limits.own_random_cases,
        limits=limits.to_dict(),
    )
    try:
        _run_checks(params, wasm, limits, own_seed, started + limits.time_limit_s, component, verdict)
    except _Stop as stop:
        if stop.check is not None:
            verdict.checks[stop.check] = False
        verdict.reasons = stop.reasons
        verdict.seconds = time.monotonic() - started
        logger.info("code upgrade refused: %s", "; ".join(stop.reasons))
        return verdict
    verdict.ok = True
    verdict.seconds = time.monotonic() - started
    return verdict


def _run_checks(
    params: dict,
    wasm: bytes,
    limits: VerifyLimits,
    own_seed: int,
    deadline: float,
    component: Component | None,
    verdict: Verdict,
) -> None:
    checks = verdict.checks
    try:
        validate_code_upgrade_params(params)
    except ProposalError as error:
        raise _Stop(None, [f"the proposal's params are malformed: {error}"]) from None
    evidence = params["evidence"]

    # 0. the evidence's demands, bounded before anything is built or run (a record without cases at
    #    all is left to the re-run stage, which names everything missing)
    if "cases" in evidence:
        try:
            _, requested = case_demands(evidence)
        except UsageError as error:
            raise _Stop("evidence", [f"the evidence cannot be re-run here: {error}"]) from None
        if requested > limits.max_random_cases:
            raise _Stop(
                "evidence",
                [
                    too_many_random_cases(requested, limits.max_random_cases)
                    + " (VerifyLimits.max_random_cases): refused without running anything"
                ],
            )

    # 1. hash
    if not isinstance(wasm, (bytes, bytearray)):
        raise _Stop("hash", [f"the module must be bytes, got {type(wasm).__name__}"])
    wasm = bytes(wasm)
    sha = hashlib.sha256(wasm).hexdigest()
    claimed = evidence.get("candidate")
    claimed = claimed if isinstance(claimed, dict) else {}
    reasons = []
    if sha != params["wasm_sha256"]:
        reasons.append(f"the module's SHA-256 is {sha}, the proposal says {params['wasm_sha256']}")
    if len(wasm) != params["wasm_size"]:
        reasons.append(f"the module has {len(wasm)} bytes, the proposal says {params['wasm_size']}")
    if claimed.get("sha256") != params["wasm_sha256"]:
        reasons.append(
            f"the evidence measured the module {claimed.get('sha256')!r}, "
            f"not the proposed {params['wasm_sha256']}"
        )
    if "size" in claimed and claimed["size"] != params["wasm_size"]:
        reasons.append(
            f"the evidence measured a module of {claimed['size']!r} bytes, "
            f"the proposal says {params['wasm_size']}"
        )
    if reasons:
        raise _Stop("hash", reasons)
    checks["hash"] = True

    # 2. static: a component this node runs, the one the evidence is about, and a module that fits it
    if component is None:
        try:
            component = get_component(params["component"])
        except UsageError as error:  # an unknown component
            raise _Stop("static", [f"this node does not run the component: {error}"]) from None
    elif (
        params["component"] != component.name and params["component"].strip().lower() not in component.aliases
    ):
        raise _Stop(
            "static",
            [f"the proposal is for component {params['component']!r}, this node checks {component.name!r}"],
        )
    if evidence.get("component") != component.name:
        raise _Stop(
            "static",
            [
                f"the evidence is for component {evidence.get('component')!r}, "
                f"the proposal for {component.name!r}"
            ],
        )
    report = inspect_wasm(wasm, component.wasm_policy())
    if not report.ok:
        raise _Stop("static", ["the module fails the static checks: " + "; ".join(report.reasons)])
    checks["static"] = True

    # 3. rebuild: the source is what runs
    if not params["source"].strip():
        raise _Stop("rebuild", ["no source: a voter cannot rebuild it"])
    remaining = _time_left(deadline, limits, "rebuild", "the rebuild")
    try:
        rebuilt = rebuild(
            component, params["source"], CodeLanguage(params["language"]), min(MAX_COMPILE_S, remaining)
        )
    except Exception as error:  # noqa: BLE001 - no compiler here, say: no "yes" either, and no crash
        raise _Stop("rebuild", [f"the source cannot be rebuilt on this node: {error}"]) from None
    if rebuilt.timed_out:
        verdict.limit = "time"
    if rebuilt.failure is not None:
        raise _Stop("rebuild", [rebuilt.failure])
    if rebuilt.sha256 != params["wasm_sha256"]:
        raise _Stop(
            "rebuild",
            [
                f"the source does not rebuild to the proposed WASM (got sha {rebuilt.sha256}, "
                f"the proposal says {params['wasm_sha256']})"
            ],
        )
    checks["rebuild"] = True

    # 4 and 5: one re-run gives correctness (own cases and the evidence's) and every figure
    remaining = _time_left(deadline, limits, "correctness", "the re-run")
    try:
        reproduction = reproduce(
            evidence,
            wasm,
            remaining,
            component=component,
            max_random_cases=limits.max_random_cases,
            own_cases=(own_seed, limits.own_random_cases),
            memory_bytes=limits.memory_bytes,
        )
    except Exception as error:  # noqa: BLE001 - UsageError for a malformed record; anything else is no "yes" either
        raise _Stop("evidence", [f"the evidence cannot be re-run here: {error}"]) from None
    verdict.worker_peak_rss_bytes = reproduction.peak_rss_bytes
    if reproduction.own_cases is not None:
        verdict.own_cases_passed = reproduction.own_cases["passed"]
    if reproduction.limit is not None:
        verdict.limit = reproduction.limit
        raise _Stop(
            "correctness",
            [f"stopped by this node's {reproduction.limit} limit: " + "; ".join(reproduction.mismatches)],
        )
    wrong = [m for m in reproduction.mismatches if "not correct" in m]
    if wrong:
        raise _Stop("correctness", wrong)
    if reproduction.rerun is None:  # the re-run did not finish, or crashed: correctness is not shown
        raise _Stop("correctness", reproduction.mismatches or ["the re-run produced no result"])
    checks["correctness"] = True
    if reproduction.mismatches:
        raise _Stop("evidence", reproduction.mismatches)
    aggregate = reproduction.rerun.get("aggregate")
    if not reproduction.confirmed or not aggregate:
        raise _Stop(
            "evidence", ["the re-run measured no workloads: there is nothing the improvement rests on"]
        )
    checks["evidence"] = True

    # 6. improvement
    pct = aggregate.get("improvement_pct")
    verdict.improvement_pct = pct
    if not isinstance(pct, (int, float)) or not math.isfinite(pct) or pct <= 0:
        raise _Stop("improvement", [f"re-measured improvement is {pct}%: not an improvement"])
    if abs(pct - params["improvement_pct"]) > IMPROVEMENT_TOLERANCE:
        raise _Stop(
            "improvement",
            [
                f"the proposal claims {params['improvement_pct']}% improvement, "
                f"the evidence (re-measured here) shows {pct}%"
            ],
        )
    unproven = luck(aggregate)  # recomputed here from this node's own re-run, not read from the claim
    if unproven:
        raise _Stop("improvement", [f"the re-measured gain of {pct:.3f} % {unproven}"])
    checks["improvement"] = True


# Sources already rebuilt in this process, by (component, language, SHA-256 of the program): the
# toolchain is deterministic, so a second verification of the same source (a re-vote, a restart of the
# check) need not compile again. Only successful builds are kept; a failure is rebuilt (it may have
# been a time limit).
_REBUILT: OrderedDict[tuple[str, str, str], str] = OrderedDict()
_REBUILT_MAX = 64
_rebuilt_lock = threading.Lock()


class Rebuilt(NamedTuple):
    sha256: str | None  # of the module this node built from the source
    failure: str | None = None  # why it did not build
    timed_out: bool = False  # the compiler was stopped at its time limit


def rebuild(
    component: Component, source: str, language: CodeLanguage, timeout_s: float = MAX_COMPILE_S
) -> Rebuilt:
    """The SHA-256 of the module this node builds from `source`, or why it does not build.

    The way the engine builds a candidate: the component's skeleton around the block (a whole program
    must keep the skeleton's harness), the source policy, the compiler, the static checks; in every
    language the component ships a skeleton for, WAT included. For a component without a WAT skeleton,
    WAT text is the whole module, compiled as it is."""
    program = source
    if (
        language in component.languages
    ):  # the program the compiler will see: a block and its whole program are one
        try:
            program = assemble(component.skeleton(language), source)
        except CandidateShapeError as error:
            return Rebuilt(None, f"the source does not rebuild here (shape): {error}")
    key = (
        component_ref(component),
        language.value,
        hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest(),
    )
    with _rebuilt_lock:
        if key in _REBUILT:
            _REBUILT.move_to_end(key)
            return Rebuilt(_REBUILT[key])
    options = CompileOptions(timeout_s=max(timeout_s, 0.001))
    if language is CodeLanguage.WAT and language not in component.languages:
        compiled = compile_source(source, language, options)
        if not compiled.ok:
            failure = (
                f"the source does not rebuild here (compile {compiled.status.value}): {_tail(compiled.log)}"
            )
            return Rebuilt(None, failure, compiled.status is CompileStatus.TIMEOUT)
        assert compiled.wasm is not None  # a successful compile always carries its module
        report = inspect_wasm(compiled.wasm, component.wasm_policy())
        if not report.ok:
            return Rebuilt(
                None,
                "the source does not rebuild here: the module it gives fails the static checks: "
                + "; ".join(report.reasons),
            )
        sha = hashlib.sha256(compiled.wasm).hexdigest()  # compiled.sha256, known here not to be None
    else:
        built = build_candidate(component, source, language, options)
        if isinstance(built, BuildFailure):
            detail = f": {_tail(built.log)}" if built.log else ""
            timed_out = (
                built.stage is Stage.COMPILE and built.message == f"compilation {CompileStatus.TIMEOUT.value}"
            )
            return Rebuilt(
                None, f"the source does not rebuild here ({built.stage}): {built.message}{detail}", timed_out
            )
        sha = built.sha256
    with _rebuilt_lock:
        _REBUILT[key] = sha
        while len(_REBUILT) > _REBUILT_MAX:
            _REBUILT.popitem(last=False)
    return Rebuilt(sha)


def _time_left(deadline: float, limits: VerifyLimits, check: str, step: str) -> float:
    """Seconds left before `deadline`; a _Stop at `check` when none are, before `step` starts."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        limit = f"{limits.time_limit_s:g} s"
        raise _Stop(check, [f"the verification exceeded the time limit of {limit} before {step}"])
    return remaining


def _tail(log: str, lines: int = 6) -> str:
    return last_lines(log, lines).replace("\n", " | ")[:1000]
