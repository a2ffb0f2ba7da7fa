"""Evidence: what a measured improvement rests on, in a form any node can re-run and check bit for bit.

An evidence record names the component, the candidate's and the baseline's SHA-256, the compiler and
wasmtime versions, the correctness cases (count and seed), every workload (id, origin, seed) and every
metric measured on both modules. Fuel, bins, rounds and the like are deterministic for one wasmtime
version, so `reproduce` re-runs everything and demands exact equality; wall times are kept for the
reader but never compared (they depend on the machine).

What the re-run costs is the re-runner's to bound, not the evidence's: `reproduce` can refuse evidence
that asks for more random cases than it allows (before anything runs), run the worker under a memory
limit (RLIMIT_DATA: private writable memory, which is what Python and wasmtime allocate; the address
space is not limited, wasmtime reserves gigabytes of it per instance without using them), and run
random correctness cases of its own, drawn with its own seed, in a fresh instance, on top of the
evidence's.
"""

from __future__ import annotations

import hashlib
import math
import resource
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from ..components import Component, Split, get_component
from ..errors import UsageError
from ..wasm.inspect import inspect_wasm
from ..wasm.sandbox import WASMTIME_VERSION, Sandbox
from ..workers import Limits, run_in_worker
from .build import BuiltModule, build_baseline
from .measure import aggregate, component_ref, load_component, measure_job, run_cases

EVIDENCE_FORMAT = "synapse-ng/evidence/1"
NONDETERMINISTIC_METRICS = frozenset({"wall_s"})


def build_evidence(
    component: Component,
    candidate: BuiltModule,
    baseline: BuiltModule,
    workloads: list[dict],
    figures: dict,
    case_seed: int,
    random_cases: int,
    cases_total: int,
) -> dict:
    """`figures` is the aggregate the evaluation computed from these workloads (measure.aggregate)."""
    objective = component.objective
    return {
        "format": EVIDENCE_FORMAT,
        "component": component.name,
        "kind": component.kind.value,
        "objective": {
            "metric": objective.metric,
            "direction": objective.direction,
            "aggregation": objective.aggregation,
        },
        "candidate": candidate.describe(),
        "baseline": baseline.describe(),
        "runtime": {"wasmtime": WASMTIME_VERSION, "limits": asdict(component.limits)},
        "cases": {"total": cases_total, "seed": case_seed, "random": random_cases, "all_passed": True},
        "workloads": workloads,
        "aggregate": figures,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@dataclass
class Reproduction:
    confirmed: bool
    mismatches: list[str] = field(default_factory=list)
    rerun: dict | None = None  # the re-measured workloads and aggregate
    # The re-runner's own random cases, when it asked for some: {"seed", "count", "total", "passed",
    # "first_failure"}; None when none were asked for or the worker gave no answer.
    own_cases: dict | None = None
    limit: str | None = None  # "time" or "memory": the worker was stopped by that limit
    peak_rss_bytes: int | None = None  # the worker's peak resident memory, when it answered

    def to_dict(self) -> dict:
        return asdict(self)  # every field, in order: what `synapse-ng reproduce --json` prints


@dataclass(frozen=True)
class WorkerLimits(Limits):
    """workers.Limits plus a limit on the worker's data (RLIMIT_DATA: heap and private writable mappings).

    The address space is the wrong thing to limit under wasmtime: it reserves several GiB of address
    space per linear memory (guard regions) and commits only what the module uses."""

    data_bytes: int | None = None

    def apply(self) -> None:  # runs in the child, before exec
        super().apply()
        if self.data_bytes is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (self.data_bytes, self.data_bytes))


# How a worker that ran out of its data limit ends: Python's MemoryError, wasmtime's failed mmap (ENOMEM),
# Rust's abort message, a thread whose stack could not be mapped (the epoch clock's), or C code that
# returned NULL from a failed allocation without setting MemoryError (seen once in CI, 2026-12-04).
_OUT_OF_MEMORY_SIGNS = (
    "MemoryError",
    "Cannot allocate memory",
    "memory allocation of",
    "out of memory",
    "can't start new thread",
    "error return without exception set",
)


def case_demands(evidence: dict) -> tuple[int, int]:
    """(seed, random case count) an evidence record asks a re-run for; UsageError when they are not
    integers (the count non-negative). Cheap: a caller can bound them before anything is built or run."""
    cases = evidence.get("cases")
    if not isinstance(cases, dict):
        raise UsageError(f"not an evidence record: cases must be an object, got {type(cases).__name__}")
    seed, count = cases.get("seed", 0), cases.get("random", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise UsageError(
            f"not an evidence record: cases.random must be a non-negative integer, got {count!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UsageError(f"not an evidence record: cases.seed must be an integer, got {seed!r}")
    return seed, count


def too_many_random_cases(count: int, max_random_cases: int) -> str:
    return (
        f"the evidence asks for {count} random correctness cases; this node runs at most {max_random_cases}"
    )


def _require(evidence: dict, *keys: str) -> None:
    missing = [key for key in keys if key not in evidence]
    if missing:
        raise UsageError(
            f"not an evidence record: missing {', '.join(missing)}; "
            "expected the JSON that `synapse-ng evaluate --evidence-out` writes"
        )


def reproduce(
    evidence: dict,
    wasm: bytes,
    time_limit_s: float = 600.0,
    component: Component | None = None,
    *,
    max_random_cases: int | None = None,
    own_cases: tuple[int, int] | None = None,
    memory_bytes: int | None = None,
) -> Reproduction:
    """Re-run the evidence on this machine; confirmed only if every deterministic figure is equal.

    The component is looked up by the evidence's name unless given (a node passes its own).
    max_random_cases: evidence asking for more random cases is refused before anything runs.
    own_cases: (seed, count) of random correctness cases of the caller's own, run in a fresh instance
    besides the evidence's (a failure there is a "not correct" mismatch).
    memory_bytes: the worker's data limit (None: unlimited); the time limit ends it too, and either
    ending is reported in `limit`, never raised."""
    if not isinstance(evidence, dict):
        raise UsageError("not an evidence record: expected a JSON object")
    _require(
        evidence, "format", "component", "candidate", "baseline", "runtime", "cases", "workloads", "aggregate"
    )
    if evidence["format"] != EVIDENCE_FORMAT:
        raise UsageError(f"evidence format {evidence['format']!r} is not {EVIDENCE_FORMAT!r}")
    seed, requested = case_demands(evidence)
    if max_random_cases is not None and requested > max_random_cases:
        return Reproduction(False, [too_many_random_cases(requested, max_random_cases)])
    cases = evidence["cases"]
    component = component or get_component(str(evidence["component"]))
    mismatches: list[str] = []
    if evidence["component"] != component.name:
        mismatches.append(f"the evidence is for {evidence['component']!r}, not {component.name!r}")

    sha = hashlib.sha256(wasm).hexdigest()
    if evidence["candidate"].get("sha256") != sha:
        mismatches.append(
            f"candidate SHA-256 is {sha}, the evidence says {evidence['candidate'].get('sha256')}"
        )
    if evidence["runtime"].get("wasmtime") != WASMTIME_VERSION:
        mismatches.append(
            f"measured with wasmtime {evidence['runtime'].get('wasmtime')}, "
            f"this node runs {WASMTIME_VERSION}: fuel is not comparable"
        )
    baseline = build_baseline(component)
    if evidence["baseline"].get("sha256") != baseline.sha256:
        mismatches.append(
            f"the baseline built here ({baseline.compiler_version}) has SHA-256 {baseline.sha256}, "
            f"the evidence says {evidence['baseline'].get('sha256')}"
        )
    report = inspect_wasm(wasm, component.wasm_policy())
    if not report.ok:
        mismatches.append("the candidate fails the static checks here: " + "; ".join(report.reasons))
        return Reproduction(False, mismatches)

    splits = sorted({str(w.get("split")) for w in evidence["workloads"]})
    if not all(s in {Split.TRAIN.value, Split.HELDOUT.value} for s in splits):
        mismatches.append(f"unknown workload split in the evidence: {splits}")
        return Reproduction(False, mismatches)
    job = {
        "component": component_ref(component),
        "candidate": wasm,
        "baseline": baseline.wasm,
        "splits": splits,
        "case_seed": seed,
        "random_cases": requested,
        "own_cases": own_cases,
    }
    # CPU seconds: a backstop behind the wall-clock limit, with room for wasmtime's parallel compilation.
    limits = WorkerLimits(cpu_seconds=math.ceil(2 * time_limit_s) + 5, data_bytes=memory_bytes)
    result = run_in_worker(reproduce_job, job, time_limit_s, limits=limits)
    if result is None:
        mismatches.append(f"the re-run exceeded the time limit: not finished within {time_limit_s:g} s")
        return Reproduction(False, mismatches, limit="time")
    if "error" in result:
        error = result["error"].strip()
        last = error.splitlines()[-1] if error else "no output"
        signs = [
            line.strip() for line in error.splitlines() if any(sign in line for sign in _OUT_OF_MEMORY_SIGNS)
        ]
        if memory_bytes is not None and signs:
            mismatches.append(
                f"the re-run exceeded the memory limit of {memory_bytes / 2**20:g} MiB ({signs[-1][:300]})"
            )
            return Reproduction(False, mismatches, limit="memory")
        if "SIGXCPU" in error:
            mismatches.append(
                f"the re-run exceeded the time limit: more than {limits.cpu_seconds} CPU seconds"
            )
            return Reproduction(False, mismatches, limit="time")
        mismatches.append("the re-run failed: " + last)
        return Reproduction(False, mismatches)
    own = result.get("own_cases")
    peak = result.get("peak_rss_bytes")
    if own is not None and own["first_failure"]:
        mismatches.append(
            "the candidate is not correct here, on this node's own random cases "
            f"(seed {own['seed']}, count {own['count']}): "
            f"{own['first_failure']['message']}"
        )
    if result["first_failure"]:
        mismatches.append(f"the candidate is not correct here: {result['first_failure']['message']}")
    if own is not None and own["first_failure"]:  # the evidence's job did not run: nothing to compare
        return Reproduction(False, mismatches, None, own, peak_rss_bytes=peak)
    if result["cases_total"] != cases.get("total"):
        mismatches.append(
            f"{result['cases_total']} correctness cases here, {cases.get('total')} in the evidence"
        )
    rerun_workloads = result["workloads"]
    rerun_aggregate = (
        aggregate(component, rerun_workloads) if rerun_workloads and not result["first_failure"] else None
    )
    mismatches += _compare_workloads(evidence["workloads"], rerun_workloads)
    if rerun_aggregate is not None:
        for key in ("candidate", "baseline", "improvement_pct", "significance"):
            if evidence["aggregate"].get(key) != rerun_aggregate.get(key):
                claimed, measured = evidence["aggregate"].get(key), rerun_aggregate[key]
                mismatches.append(f"aggregate {key}: evidence {claimed}, re-run {measured}")
    rerun = {"workloads": rerun_workloads, "aggregate": rerun_aggregate}
    return Reproduction(not mismatches, mismatches, rerun, own, peak_rss_bytes=peak)


def reproduce_job(job: dict) -> dict:
    """Inside the worker: the caller's own random cases first (in a fresh instance; a failure there ends
    the job), then the evidence's job exactly (measure_job), and the worker's peak memory."""
    own: dict | None = None
    result: dict
    if job.get("own_cases") is not None:
        seed, count = job["own_cases"]
        own = run_own_cases(load_component(job["component"]), job["candidate"], seed, count)
    if own is not None and own["first_failure"]:
        result = {"cases_passed": 0, "cases_total": 0, "first_failure": None, "workloads": []}
    else:
        result = measure_job(job)
    result["own_cases"] = own
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return result


def run_own_cases(component: Component, wasm: bytes, seed: int, count: int) -> dict:
    """component.random_cases(seed, count) on a fresh instance of the module, to the first failure."""
    cases = component.random_cases(seed, count)
    passed, failure = run_cases(component, Sandbox(wasm, component.limits), cases, "own cases")
    return {"seed": seed, "count": count, "total": len(cases), "passed": passed, "first_failure": failure}


def _compare_workloads(claimed: list[dict], measured: list[dict]) -> list[str]:
    mismatches = []
    claimed_by_id = {w.get("id"): w for w in claimed}
    measured_by_id = {w["id"]: w for w in measured}
    if set(claimed_by_id) != set(measured_by_id):
        mismatches.append(
            f"workloads differ: evidence has {sorted(map(str, claimed_by_id))}, "
            f"this node measures {sorted(measured_by_id)}"
        )
    for workload_id, ours in measured_by_id.items():
        theirs = claimed_by_id.get(workload_id)
        if theirs is None:
            continue
        for key in ("origin", "seed"):
            if theirs.get(key) != ours[key]:
                here, there = ours[key], theirs.get(key)
                mismatches.append(
                    f"workload {workload_id}: {key} is {here!r} here, {there!r} in the evidence"
                )
        sides = [("candidate", theirs.get("candidate"), ours["candidate"])]
        sides.append(("baseline", theirs.get("baseline"), ours["baseline"]))
        claimed_streams, measured_streams = (
            theirs.get("baseline_streams") or [],
            ours.get("baseline_streams") or [],
        )
        if not isinstance(claimed_streams, list) or len(claimed_streams) != len(measured_streams):
            count = len(claimed_streams) if isinstance(claimed_streams, list) else claimed_streams
            mismatches.append(
                f"workload {workload_id}: the baseline under {len(measured_streams)} other random streams "
                f"here, {count!r:.40} in the evidence"
            )
        else:
            sides += [
                (f"baseline (stream {n})", claimed, measured)
                for n, (claimed, measured) in enumerate(
                    zip(claimed_streams, measured_streams, strict=True), start=1
                )
            ]
        for side, claimed_metrics, measured_metrics in sides:
            claimed_metrics = claimed_metrics if isinstance(claimed_metrics, dict) else {}
            for metric in sorted(set(claimed_metrics) | set(measured_metrics)):
                if metric in NONDETERMINISTIC_METRICS:
                    continue
                claimed_value, measured_value = claimed_metrics.get(metric), measured_metrics.get(metric)
                if claimed_value != measured_value:
                    mismatches.append(
                        f"workload {workload_id}, {side} {metric}: "
                        f"evidence {claimed_value!r:.200}, re-run {measured_value!r:.200}"
                    )
    return mismatches
