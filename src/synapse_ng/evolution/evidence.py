"""Evidence: what a measured improvement rests on, in a form any node can re-run and check bit for bit.

An evidence record names the component, the candidate's and the baseline's SHA-256, the compiler and
wasmtime versions, the correctness cases (count and seed), every workload (id, origin, seed) and every
metric measured on both modules. Fuel, bins, rounds and the like are deterministic for one wasmtime
version, so `reproduce` re-runs everything and demands exact equality; wall times are kept for the
reader but never compared (they depend on the machine).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ..components import Component, Split, get_component
from ..errors import UsageError
from ..wasm.inspect import inspect_wasm
from ..wasm.sandbox import WASMTIME_VERSION
from .build import BuiltModule, build_baseline
from .measure import aggregate, component_ref, measure_job, run_in_worker

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
        "objective": {"metric": objective.metric, "direction": objective.direction, "aggregation": objective.aggregation},
        "candidate": candidate.describe(),
        "baseline": baseline.describe(),
        "runtime": {"wasmtime": WASMTIME_VERSION, "limits": asdict(component.limits)},
        "cases": {"total": cases_total, "seed": case_seed, "random": random_cases, "all_passed": True},
        "workloads": workloads,
        "aggregate": figures,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Reproduction:
    confirmed: bool
    mismatches: list[str] = field(default_factory=list)
    rerun: dict | None = None  # the re-measured workloads and aggregate

    def to_dict(self) -> dict:
        return {"confirmed": self.confirmed, "mismatches": self.mismatches, "rerun": self.rerun}


def _require(evidence: dict, *keys: str) -> None:
    missing = [key for key in keys if key not in evidence]
    if missing:
        raise UsageError(f"not an evidence record: missing {', '.join(missing)}; expected the JSON that `synapse-ng evaluate --evidence-out` writes")


def reproduce(evidence: dict, wasm: bytes, time_limit_s: float = 600.0, component: Component | None = None) -> Reproduction:
    """Re-run the evidence on this machine; confirmed only if every deterministic figure is equal.

    The component is looked up by the evidence's name unless given (a node passes its own)."""
    if not isinstance(evidence, dict):
        raise UsageError("not an evidence record: expected a JSON object")
    _require(evidence, "format", "component", "candidate", "baseline", "runtime", "cases", "workloads", "aggregate")
    if evidence["format"] != EVIDENCE_FORMAT:
        raise UsageError(f"evidence format {evidence['format']!r} is not {EVIDENCE_FORMAT!r}")
    component = component or get_component(str(evidence["component"]))
    mismatches: list[str] = []
    if evidence["component"] != component.name:
        mismatches.append(f"the evidence is for {evidence['component']!r}, not {component.name!r}")

    sha = hashlib.sha256(wasm).hexdigest()
    if evidence["candidate"].get("sha256") != sha:
        mismatches.append(f"candidate SHA-256 is {sha}, the evidence says {evidence['candidate'].get('sha256')}")
    if evidence["runtime"].get("wasmtime") != WASMTIME_VERSION:
        mismatches.append(f"measured with wasmtime {evidence['runtime'].get('wasmtime')}, this node runs {WASMTIME_VERSION}: fuel is not comparable")
    baseline = build_baseline(component)
    if evidence["baseline"].get("sha256") != baseline.sha256:
        mismatches.append(f"the baseline built here ({baseline.compiler_version}) has SHA-256 {baseline.sha256}, the evidence says {evidence['baseline'].get('sha256')}")
    report = inspect_wasm(wasm, component.wasm_policy())
    if not report.ok:
        mismatches.append("the candidate fails the static checks here: " + "; ".join(report.reasons))
        return Reproduction(False, mismatches)

    cases = evidence["cases"]
    splits = sorted({str(w.get("split")) for w in evidence["workloads"]})
    if not all(s in {Split.TRAIN.value, Split.HELDOUT.value} for s in splits):
        mismatches.append(f"unknown workload split in the evidence: {splits}")
        return Reproduction(False, mismatches)
    job = {
        "component": component_ref(component),
        "candidate": wasm,
        "baseline": baseline.wasm,
        "splits": splits,
        "case_seed": int(cases.get("seed", 0)),
        "random_cases": int(cases.get("random", 0)),
    }
    result = run_in_worker(measure_job, job, time_limit_s)
    if result is None:
        mismatches.append(f"the re-run did not finish within {time_limit_s:g} s")
        return Reproduction(False, mismatches)
    if "error" in result:
        mismatches.append("the re-run failed: " + result["error"].strip().splitlines()[-1])
        return Reproduction(False, mismatches)
    if result["first_failure"]:
        mismatches.append(f"the candidate is not correct here: {result['first_failure']['message']}")
    if result["cases_total"] != cases.get("total"):
        mismatches.append(f"{result['cases_total']} correctness cases here, {cases.get('total')} in the evidence")
    rerun_workloads = result["workloads"]
    rerun_aggregate = aggregate(component, rerun_workloads) if rerun_workloads and not result["first_failure"] else None
    mismatches += _compare_workloads(evidence["workloads"], rerun_workloads)
    if rerun_aggregate is not None:
        for key in ("candidate", "baseline", "improvement_pct"):
            if evidence["aggregate"].get(key) != rerun_aggregate[key]:
                mismatches.append(f"aggregate {key}: evidence {evidence['aggregate'].get(key)}, re-run {rerun_aggregate[key]}")
    return Reproduction(not mismatches, mismatches, {"workloads": rerun_workloads, "aggregate": rerun_aggregate})


def _compare_workloads(claimed: list[dict], measured: list[dict]) -> list[str]:
    mismatches = []
    claimed_by_id = {w.get("id"): w for w in claimed}
    measured_by_id = {w["id"]: w for w in measured}
    if set(claimed_by_id) != set(measured_by_id):
        mismatches.append(f"workloads differ: evidence has {sorted(map(str, claimed_by_id))}, this node measures {sorted(measured_by_id)}")
    for workload_id, ours in measured_by_id.items():
        theirs = claimed_by_id.get(workload_id)
        if theirs is None:
            continue
        for key in ("origin", "seed"):
            if theirs.get(key) != ours[key]:
                mismatches.append(f"workload {workload_id}: {key} is {ours[key]!r} here, {theirs.get(key)!r} in the evidence")
        for side in ("candidate", "baseline"):
            claimed_metrics, measured_metrics = theirs.get(side) or {}, ours[side]
            for metric in sorted(set(claimed_metrics) | set(measured_metrics)):
                if metric in NONDETERMINISTIC_METRICS:
                    continue
                if claimed_metrics.get(metric) != measured_metrics.get(metric):
                    mismatches.append(
                        f"workload {workload_id}, {side} {metric}: evidence {claimed_metrics.get(metric)}, re-run {measured_metrics.get(metric)}"
                    )
    return mismatches
