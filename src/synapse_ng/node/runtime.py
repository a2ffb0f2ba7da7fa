"""The components at work: a node's live version of each component, called in the sandbox.

    ComponentRuntime(component, baseline_wasm)
        .activate(version, wasm)      the new version on top; the one before stays as its fallback
        .revert(version)              drop a version (rollback); the one below becomes active again
        .call(input) -> Served        bounded by the component's fuel, memory and time limits
        .window(since) -> WindowStats calls, traps, fallbacks and the production objective since a time

Version 0 ("baseline") is the component's shipped skeleton, compiled here. A call that traps, or whose
output the host finds invalid, is served again by the previous version, and both the fault and the
fallback are counted: production keeps working while the health window sees the regression.
Each call record keeps the *production objective* of the call (what the immune system and the rollout
judge): for task_allocation the excess of bins over the Martello–Toth L2 lower bound in percent (not
L1: on inputs such as items just over half a bin, L1 is far below any packing and would show a large
"excess" that no heuristic can remove), for raft_consensus the fuel per vote; other components have none.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..components import CaseFailure, Component
from ..components.task_allocation.bounds import l2_bound
from ..components.task_allocation.protocol import validate_packing
from ..errors import UsageError
from ..upgrade.health import WindowStats
from ..wasm.inspect import inspect_wasm
from ..wasm.sandbox import Instance, Sandbox

BASELINE = "baseline"
COMPONENTS = ("task_allocation", "raft_consensus", "gossip_protocol")  # what every node runs
RECENT_CALLS = 2000
RECENT_INPUTS = 20


class VersionError(UsageError):
    """A version that cannot be activated (its module fails the static checks or cannot be instantiated)."""


@dataclass
class Served:
    output: Any
    version: str  # the version whose output was used
    fuel: int
    wall_s: float
    fault: str | None  # why the active version's answer was not used (a trap, an invalid output)
    objective: float | None
    faulted: str | None = None  # the version that faulted (the newest one that did), if any


@dataclass
class _Version:
    version: str
    sha256: str
    instance: Instance
    sandbox: Sandbox


@dataclass(frozen=True)
class _Record:
    at: float
    version: str
    fault: bool
    fell_back: bool
    objective: float | None


def production_objective(component: Component, input: Any, output: Any, fuel: int) -> float | None:
    """What the node watches for each call of a component (see the module docstring)."""
    if component.name == "task_allocation":
        items, capacity = list(input["items"]), int(input["capacity"])
        if not items:
            return None
        bound = l2_bound(items, capacity)
        return 100.0 * (len(set(output)) - bound) / bound
    if component.name == "raft_consensus":
        return fuel / max(1, len(input.votes))
    return None


class ComponentRuntime:
    def __init__(self, component: Component, baseline_wasm: bytes, baseline_sha256: str):
        self.component = component
        self._lock = threading.Lock()
        self._stack: list[_Version] = []
        self._records: deque[_Record] = deque(maxlen=RECENT_CALLS)
        self.recent_inputs: deque[Any] = deque(maxlen=RECENT_INPUTS)
        self.calls = 0
        self.faults = 0
        self.fallbacks = 0
        self._stack.append(self._load(BASELINE, baseline_wasm, baseline_sha256))

    # ------------------------------------------------------------------ versions

    def _load(self, version: str, wasm: bytes, sha256: str) -> _Version:
        report = inspect_wasm(wasm, self.component.wasm_policy())
        if not report.ok:
            raise VersionError(
                f"{self.component.name} version {version[:12]} fails the static checks: "
                f"{'; '.join(report.reasons)}"
            )
        sandbox = Sandbox(wasm, self.component.limits)
        return _Version(version, sha256, sandbox.instantiate(), sandbox)

    @property
    def active(self) -> str:
        return self._stack[-1].version

    @property
    def active_sha256(self) -> str:
        return self._stack[-1].sha256

    def versions(self) -> list[str]:
        return [v.version for v in self._stack]

    def activate(self, version: str, wasm: bytes, sha256: str) -> None:
        loaded = self._load(version, wasm, sha256)
        with self._lock:
            if version in self.versions():
                return
            self._stack.append(loaded)

    def revert(self, version: str) -> bool:
        """Remove `version` (the baseline stays); True if it was there."""
        with self._lock:
            for index, entry in enumerate(self._stack):
                if entry.version == version and version != BASELINE:
                    del self._stack[index]
                    return True
        return False

    # ------------------------------------------------------------------ calls

    def call(self, input: Any, *, production: bool = True) -> Served:
        """Serve `input` from the newest version that does not fault. `production=False` is a replay of an
        input already kept (the rollout's canary): it is counted like any call, but not kept again, so the
        rollout's shadow comparison stays on the distinct inputs production really sent."""
        with self._lock:
            self.calls += 1
            if production:
                self.recent_inputs.append(input)
            fault = faulted = None
            for depth, entry in enumerate(reversed(self._stack)):
                started = time.perf_counter()
                try:
                    out = self.component.call(entry.instance, input)
                    self._check(input, out.value)
                except CaseFailure as failure:
                    fault = fault or f"{entry.version[:12]}: {failure}"
                    faulted = faulted or entry.version
                    self.faults += 1
                    # A trapped instance may hold a broken state: start the next call from a fresh one.
                    entry.instance = entry.sandbox.instantiate()
                    continue
                wall = time.perf_counter() - started
                objective = production_objective(self.component, input, out.value, out.fuel)
                if depth > 0:
                    self.fallbacks += 1
                    self._records.append(_Record(time.time(), self._stack[-1].version, True, True, None))
                    self._records.append(_Record(time.time(), entry.version, False, False, objective))
                else:
                    self._records.append(_Record(time.time(), entry.version, False, False, objective))
                return Served(out.value, entry.version, out.fuel, wall, fault, objective, faulted)
            raise CaseFailure(f"every version of {self.component.name} failed on this input: {fault}")

    def _check(self, input: Any, output: Any) -> None:
        """The checks the host can afford in production (no oracle): a packing must be valid."""
        if self.component.name == "task_allocation":
            try:
                validate_packing(list(input["items"]), int(input["capacity"]), output)
            except (CaseFailure, ValueError) as error:
                raise CaseFailure(f"invalid packing: {error}") from None

    def window(self, since: float, version: str | None = None) -> WindowStats:
        """Calls served by `version` (default: any) since `since`; faults count against the version that
        faulted."""
        records = [
            r for r in list(self._records) if r.at >= since and (version is None or r.version == version)
        ]
        objectives = [r.objective for r in records if r.objective is not None and not r.fault]
        return WindowStats(
            calls=sum(1 for r in records if not r.fault),
            traps=sum(1 for r in records if r.fault),
            fallbacks=sum(1 for r in records if r.fell_back),
            objective=sum(objectives) / len(objectives) if objectives else None,
        )

    def shadow(self, version: str, inputs: list[Any]) -> WindowStats:
        """Run `inputs` through one version only (no fallback, nothing counted in production figures):
        the rollout compares the new and the previous version on the same recent production inputs."""
        with self._lock:
            entry = next((v for v in self._stack if v.version == version), None)
            if entry is None:
                raise VersionError(f"{self.component.name} has no live version {version[:12]}")
            stats = WindowStats()
            objectives = []
            for input in inputs:
                try:
                    out = self.component.call(entry.instance, input)
                    self._check(input, out.value)
                except CaseFailure:
                    stats.traps += 1
                    entry.instance = entry.sandbox.instantiate()
                    continue
                stats.calls += 1
                objective = production_objective(self.component, input, out.value, out.fuel)
                if objective is not None:
                    objectives.append(objective)
            stats.objective = sum(objectives) / len(objectives) if objectives else None
            return stats

    def previous_of(self, version: str) -> str | None:
        names = self.versions()
        return names[names.index(version) - 1] if version in names and names.index(version) > 0 else None
