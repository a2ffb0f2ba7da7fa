"""Measuring inside a worker process: the correctness cascade, then the workloads, on candidate and baseline.

The worker is a fresh `python -m synapse_ng.workers` process (no inherited threads or wasmtime state, and
the caller's `__main__` is never re-imported) with a time limit that kills it, so a hang or a crash of the
runtime cannot take the engine or the node down with it.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..components import CaseFailure, Component, ComponentKind, Split
from ..components.base import summarize
from ..wasm.sandbox import Sandbox
from .significance import significance


def aggregate(component: Component, workloads: list[dict]) -> dict:
    objective = component.objective
    metric = objective.metric
    cand = [w["candidate"][metric] for w in workloads]
    base = [w["baseline"][metric] for w in workloads]
    for w in workloads:
        w["improvement_pct"] = objective.improvement_pct(w["candidate"][metric], w["baseline"][metric])
    improvements = [w["improvement_pct"] for w in workloads]
    improvement = sum(improvements) / len(improvements) if improvements else 0.0
    figures = {
        "metric": metric,
        "candidate": objective.aggregate(cand) if cand else None,
        "baseline": objective.aggregate(base) if base else None,
        "improvement_pct": improvement,
    }
    verdict = significance(objective, workloads, improvement) if workloads else None
    if verdict is not None:  # workloads of generated instances: is the gain skill or luck?
        figures["significance"] = verdict
    return figures


def run_cases(component, sandbox: Sandbox, cases, stage: str) -> tuple[int, dict | None]:
    """(cases passed, the first failure or None): the cases in order on one fresh instance, stopping at the
    first that fails (an instantiation trap fails them all)."""
    instance = sandbox.instantiate()
    if instance.startup.trap is not None:
        return 0, {
            "stage": stage,
            "case": "instantiate",
            "input": "",
            "message": f"instantiation trapped: {instance.startup.trap}",
        }
    passed = 0
    for case in cases:
        output = None
        try:
            output = component.call(instance, case.input).value
            component.check_output(case.input, output)
        except CaseFailure as error:
            return passed, _failure("cases", case.id, component, case.input, error, output)
        passed += 1
    return passed, None


def _failure(
    stage: str, case_id: str, component: Component, input: Any, error: Exception, output: Any = None
) -> dict:
    failure: dict[str, Any] = {
        "stage": stage,
        "case": case_id,
        "input": summarize(input),
        "message": f"{stage} {case_id}: {error}",
    }
    if component.kind is ComponentKind.EXACT and stage == "cases":
        failure["expected"] = summarize(component.reference(input))
        failure["got"] = summarize(output) if output is not None else None
    return failure


def component_ref(component: Component) -> str:
    """How a worker finds the component: its class's import path (test components work too)."""
    cls = type(component)
    return f"{cls.__module__}:{cls.__qualname__}"


def load_component(ref: str) -> Component:
    """The component a `component_ref` names, made afresh in this process (a worker, a Ray task)."""
    module_name, _, class_name = ref.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def measure_job(job: dict) -> dict:
    """Inside the worker: the correctness cascade, then every workload on candidate and baseline."""
    component = load_component(job["component"])
    result: dict = {"cases_passed": 0, "cases_total": 0, "first_failure": None, "workloads": []}
    candidate = Sandbox(job["candidate"], component.limits)
    baseline = Sandbox(job["baseline"], component.limits)
    # The cheap cases first; the scale cases, which cost as much as a large batch, only for a candidate
    # that got through them.
    cases = (
        component.fixed_cases()
        + component.random_cases(job["case_seed"], job["random_cases"])
        + component.scale_cases()
    )
    result["cases_total"] = len(cases)
    result["cases_passed"], result["first_failure"] = run_cases(component, candidate, cases, "cases")
    if result["first_failure"] is not None:
        return result
    for split in job["splits"]:
        for workload in component.workloads(Split(split)):
            try:
                measured = component.measure(candidate.instantiate(), workload)
            except CaseFailure as error:
                result["first_failure"] = _failure("workloads", workload.id, component, "", error)
                return result
            reference = component.measure(baseline.instantiate(), workload)
            record: dict[str, Any] = {
                "id": workload.id,
                "split": workload.split.value,
                "origin": workload.origin,
                "seed": workload.seed,
                "candidate": measured,
                "baseline": reference,
            }
            if workload.split is Split.HELDOUT and component.random_streams:
                # What another random stream alone gains: the bar a held-out gain must clear.
                record["baseline_streams"] = [
                    component.measure_reseeded(baseline.instantiate(), workload, stream)
                    for stream in range(1, component.random_streams + 1)
                ]
            result["workloads"].append(record)
    return result
