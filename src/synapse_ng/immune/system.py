"""The immune system: a node's measurements in, HealthIssues and remedies out.

    system = ImmuneSystem(targets=DEFAULT_TARGETS, chronic_after=3)
    issues = system.check({"dissemination_ms": 2600.0, ...})   # -> [HealthIssue]
    actions = await system.respond(issues, remedies)            # -> [Action]
    actions = await system.step(measurements, remedies)         # both

Escalation. Every check that finds a metric on the wrong side of its limit counts one more consecutive
violation; a healthy value resets the count. Before `chronic_after` consecutive violations the issue's
source is "config" (a knob may fix it); from the `chronic_after`-th on it is "algorithm" (the code itself
is the problem, so the engine should evolve it). Targets without a component ("") are "resource": they
are reported, never remedied.

Remedies. The immune system decides, the node acts: `Remedies` is what the node implements (open a
signed proposal, run the evolutionary engine). For each issue, keyed "component:metric":

1. a proposal for that key is already open          -> "skipped_open_proposal" (never a second one)
2. an evolve for that key is still running          -> "skipped_in_progress"  (never two at once)
3. source "config" and the target has a remedy      -> propose_config          "config_change"
4. source "algorithm"                               -> await evolve; a measured candidate with a
   positive improvement and WASM bytes               -> propose_code            "code_upgrade"
   no deployable result                              -> "evolve_failed", then the config remedy if
                                                        there is one            "config_change"
   evolve raised (the engine, its model or the       -> "evolve_error", then the config remedy too
   toolchain failed; the node itself lives on)
5. anything else                                     -> "reported"

An evolve can take minutes, and the node keeps stepping meanwhile: the key is marked in progress for
the whole call, so a later step skips it instead of starting a second search. After an evolve the open
proposal check is repeated (another node may have proposed meanwhile). An exception from evolve is an
"evolve_error" (an operator must look: `synapse-ng demo` stops on one), not fatal to the node; exceptions
from propose_config / propose_code are the node's bugs and propagate.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from ..models import GeneratedCode, HealthIssue
from .targets import DEFAULT_TARGETS, Target, TargetError, severity

__all__ = ["ACTION_KINDS", "HISTORY_SIZE", "Action", "ImmuneSystem", "Remedies"]

logger = logging.getLogger(__name__)

HISTORY_SIZE = 200
ACTION_KINDS = (
    "config_change",
    "code_upgrade",
    "evolve_failed",
    "evolve_error",
    "skipped_open_proposal",
    "skipped_in_progress",
    "reported",
)


@runtime_checkable
class Remedies(Protocol):
    """What the node does on the immune system's behalf. Proposal methods return the proposal id, or
    None when the node did not open one. `engine_enabled`: whether this node may evolve at all
    (ENABLE_EVOLUTIONARY_ENGINE); when it may not, an algorithm issue is reported and its config remedy,
    if any, proposed instead."""

    @property
    def engine_enabled(self) -> bool: ...

    def open_proposal_for(self, issue_key: str) -> str | None:
        """The id of a still-open proposal made for this issue key, if any."""
        ...

    def propose_config(self, issue: HealthIssue, changes: dict, issue_key: str) -> str | None: ...

    async def evolve(self, issue: HealthIssue) -> GeneratedCode | None:
        """Run the evolutionary engine for issue.affected_component (may take minutes)."""
        ...

    def propose_code(self, issue: HealthIssue, code: GeneratedCode, issue_key: str) -> str | None: ...


@dataclass
class Action:
    """What the immune system did about one issue."""

    issue_key: str
    kind: str  # one of ACTION_KINDS
    proposal_id: str | None
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {self.kind!r}; use one of {', '.join(ACTION_KINDS)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _deployable(code: GeneratedCode | None) -> bool:
    return (
        code is not None
        and code.measured
        and code.estimated_improvement is not None
        and code.estimated_improvement > 0
        and bool(code.wasm_binary)
    )


def _why_not(code: GeneratedCode | None) -> str:
    if code is None:
        return "the engine found no better candidate"
    if not code.measured or code.estimated_improvement is None:
        return "the candidate was not measured"
    if code.estimated_improvement <= 0:
        return f"the candidate's measured improvement is {code.estimated_improvement:g}% (not positive)"
    return "the candidate has no WASM binary"


class ImmuneSystem:
    """Turns measurements into HealthIssues (check) and HealthIssues into remedies (respond)."""

    def __init__(self, targets: tuple[Target, ...] = DEFAULT_TARGETS, *, chronic_after: int = 3) -> None:
        targets = tuple(targets)
        if not all(isinstance(target, Target) for target in targets):
            raise TargetError("targets must be Target objects (see synapse_ng.immune.targets)")
        metrics = [target.metric for target in targets]
        duplicates = sorted({metric for metric in metrics if metrics.count(metric) > 1})
        if duplicates:
            raise TargetError(f"one target per metric, but {', '.join(duplicates)} appear(s) more than once")
        if isinstance(chronic_after, bool) or not isinstance(chronic_after, int) or chronic_after < 1:
            raise ValueError(
                f"chronic_after must be a positive integer (checks in a row), got {chronic_after!r}"
            )
        self.targets = targets
        self.chronic_after = chronic_after
        self._by_metric = {target.metric: target for target in targets}
        # metric -> consecutive violating checks (0 after a healthy value)
        self.consecutive: dict[str, int] = {target.metric: 0 for target in targets}
        # the last HISTORY_SIZE issues, oldest first
        self.history: deque[HealthIssue] = deque()
        # id(issue) -> (issue, target) for the issues in history: issue_key needs the metric, which a
        # HealthIssue does not carry; holding the issue keeps its id from being reused
        self._origin: dict[int, tuple[HealthIssue, Target]] = {}
        self._in_progress: set[str] = set()

    # ------------------------------------------------------------------------------------ detection

    def check(self, measurements: dict[str, float]) -> list[HealthIssue]:
        """One issue per target whose metric is measured and violated. Missing metrics are skipped
        (their counts stay as they are); NaN counts as missing. A non-number raises TypeError."""
        issues = []
        for target in self.targets:
            if target.metric not in measurements:
                continue
            raw = measurements[target.metric]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise TypeError(f"measurement {target.metric} must be a number, got {raw!r}")
            value = float(raw)
            if math.isnan(value):
                logger.warning("measurement %s is NaN; skipped", target.metric)
                continue
            if not target.violated(value):
                if self.consecutive[target.metric]:
                    logger.info(
                        "%s healthy again (%g) after %d violating check(s)",
                        target.metric,
                        value,
                        self.consecutive[target.metric],
                    )
                self.consecutive[target.metric] = 0
                continue
            self.consecutive[target.metric] += 1
            issue = self._issue(target, value, self.consecutive[target.metric])
            self._remember(issue, target)
            issues.append(issue)
            logger.info("health issue %s: %s", self._key(target), issue.description)
        return issues

    def _issue(self, target: Target, value: float, count: int) -> HealthIssue:
        if not target.component:
            source = "resource"
        elif count >= self.chronic_after:
            source = "algorithm"
        else:
            source = "config"
        relation = "above the maximum" if target.bound == "max" else "below the minimum"
        checks = "check" if count == 1 else "consecutive checks"
        description = (
            f"{target.metric} = {value:g} is {relation} {target.limit:g} for {count} {checks} "
            f"({target.description})"
        )
        return HealthIssue(
            issue_type=target.issue_type,
            severity=severity(value, target),
            current_value=value,
            target_value=target.limit,
            recommended_action=target.recommended_action,
            description=description,
            issue_source=source,
            affected_component=target.component,
        )

    def report(self, issue: HealthIssue) -> None:
        """Record an issue found outside the measurements (a live tally that disagreed with the reference):
        it is shown with the others; the node has already acted on it."""
        if len(self.history) >= HISTORY_SIZE:
            oldest = self.history.popleft()
            self._origin.pop(id(oldest), None)
        self.history.append(issue)

    def _remember(self, issue: HealthIssue, target: Target) -> None:
        if len(self.history) >= HISTORY_SIZE:
            oldest = self.history.popleft()
            self._origin.pop(id(oldest), None)
        self.history.append(issue)
        self._origin[id(issue)] = (issue, target)

    # ----------------------------------------------------------------------------------------- keys

    @staticmethod
    def _key(target: Target) -> str:
        return f"{target.component}:{target.metric}"

    def target_of(self, issue: HealthIssue) -> Target:
        """The target an issue was raised for: by identity for the issues in history, otherwise by its
        component and the metric its description starts with."""
        entry = self._origin.get(id(issue))
        if entry is not None and entry[0] is issue:
            return entry[1]
        metric = issue.description.split(" ", 1)[0] if issue.description else ""
        target = self._by_metric.get(metric)
        if target is not None and target.component == issue.affected_component:
            return target
        raise ValueError(
            f"cannot tell which target issue {issue.description!r} belongs to: pass issues made by this "
            f"ImmuneSystem's check() (their description starts with the metric name)"
        )

    def issue_key(self, issue: HealthIssue) -> str:
        """The key "component:metric", by which proposals and in-flight evolves are tracked."""
        return self._key(self.target_of(issue))

    @property
    def in_progress(self) -> frozenset[str]:
        """Issue keys whose evolve is still running."""
        return frozenset(self._in_progress)

    # ------------------------------------------------------------------------------------- remedies

    async def respond(self, issues: list[HealthIssue], remedies: Remedies) -> list[Action]:
        """Remedy each issue in turn (see the module docstring for the rules); one or two actions
        per issue (a failed evolve is followed by its config fallback)."""
        actions: list[Action] = []
        for issue in issues:
            actions.extend(await self._respond_one(issue, remedies))
        for action in actions:
            logger.info("immune action %s: %s (%s)", action.issue_key, action.kind, action.detail)
        return actions

    async def step(self, measurements: dict[str, float], remedies: Remedies) -> list[Action]:
        """check, then respond to what it found."""
        return await self.respond(self.check(measurements), remedies)

    async def _respond_one(self, issue: HealthIssue, remedies: Remedies) -> list[Action]:
        target = self.target_of(issue)
        key = self._key(target)
        open_id = remedies.open_proposal_for(key)
        if open_id:
            return [
                Action(key, "skipped_open_proposal", open_id, f"proposal {open_id} for {key} is still open")
            ]
        if key in self._in_progress:
            return [Action(key, "skipped_in_progress", None, f"an evolve for {key} is still running")]
        if issue.issue_source == "config" and target.config_remedy:
            return [self._propose_config(issue, target, key, remedies, "")]
        if issue.issue_source != "algorithm":
            why = (
                "no automatic remedy for this metric"
                if not target.component
                else "no config remedy; waiting until chronic"
            )
            return [Action(key, "reported", None, f"{issue.issue_source} issue reported: {why}")]

        if not remedies.engine_enabled:
            actions = [
                Action(
                    key,
                    "reported",
                    None,
                    "algorithm issue reported: the Evolutionary Engine is off on this node "
                    "(ENABLE_EVOLUTIONARY_ENGINE, node run --evolve)",
                )
            ]
            if target.config_remedy:
                actions.append(self._propose_config(issue, target, key, remedies, "the engine is off; "))
            return actions
        self._in_progress.add(key)
        try:
            try:
                code = await remedies.evolve(issue)
            except Exception as error:  # the engine, the model or the toolchain failed: not fatal
                logger.warning("evolve for %s failed: %s", key, error, exc_info=True)
                code, failure, kind = None, f"evolve raised {type(error).__name__}: {error}", "evolve_error"
            else:
                failure, kind = (_why_not(code) if not _deployable(code) else ""), "evolve_failed"
            open_id = remedies.open_proposal_for(key)  # the evolve took a while: look again
            if open_id:
                return [
                    Action(
                        key,
                        "skipped_open_proposal",
                        open_id,
                        f"proposal {open_id} for {key} opened while evolving",
                    )
                ]
            if not failure:
                assert code is not None  # no failure: _deployable(code) held
                proposal_id = remedies.propose_code(issue, code, key)
                return [
                    Action(
                        key,
                        "code_upgrade",
                        proposal_id,
                        f"measured improvement {code.estimated_improvement:g}% for {target.component}"
                        + ("" if proposal_id else "; the node opened no proposal"),
                    )
                ]
            actions = [Action(key, kind, None, failure)]
            if target.config_remedy:
                actions.append(
                    self._propose_config(issue, target, key, remedies, "fallback after a failed evolve; ")
                )
            return actions
        finally:
            self._in_progress.discard(key)

    @staticmethod
    def _propose_config(
        issue: HealthIssue, target: Target, key: str, remedies: Remedies, prefix: str
    ) -> Action:
        changes = dict(target.config_remedy or {})
        proposal_id = remedies.propose_config(issue, changes, key)
        detail = prefix + "proposed " + ", ".join(f"{name}={value!r}" for name, value in changes.items())
        if not proposal_id:
            detail += "; the node opened no proposal"
        return Action(key, "config_change", proposal_id, detail)
