"""This node's part in the rollouts of approved code upgrades: switch when its stage comes, watch the
version's health for a window, report, and roll back (a regression, a production fault, an operator).

    await rollouts.drive(proposal) -> bool      one step; True once the upgrade is rolled back here for good
    rollouts.roll_back_at_once(component, version, reason)     a faulting version, on every node, now
    rollouts.operator_rollback(component, reason) -> Envelope  the newest live upgrade of a component

What stage is active and who switches is computed from the signed messages alone (upgrade.rollout_status):
every node derives the same rollout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..components import CaseFailure
from ..governance import readable_text
from ..upgrade import judge_window, rollback_body, stage_report_body
from .artifacts import Artifacts
from .config import NodeConfig
from .envelope import Envelope
from .ledger import Ledger
from .metrics import NodeMetrics
from .refusal import Refusal
from .runtime import ComponentRuntime
from .state import NodeState

logger = logging.getLogger(__name__)


class Rollouts:
    def __init__(
        self,
        node_id: str,
        state: NodeState,
        config: NodeConfig,
        runtimes: dict[str, ComponentRuntime],
        metrics: NodeMetrics,
        ledger: Ledger,
        artifacts: Artifacts,
        sign: Callable[[str, dict], Envelope],
    ):
        self.id = node_id
        self.state = state
        self.config = config
        self.runtimes = runtimes
        self.metrics = metrics
        self.ledger = ledger
        self.artifacts = artifacts
        self._sign = sign

    async def drive(self, proposal: Envelope) -> bool:
        """One step of this node's part in a rollout; True once it is rolled back here for good (a completed
        rollout stays watched: an operator may still roll it back)."""
        status = self.ledger.rollout_status(proposal)
        params = proposal.body["params"]
        runtime = self.runtimes.get(params["component"])
        if runtime is None:
            return True
        live = proposal.id in runtime.versions()
        if status.state == "rolled_back":  # final: nothing can bring it back
            if live:
                self._revert(params["component"], proposal, status.rollback_reason or "rolled back")
                logger.warning(
                    "%s: rolled back %s: %s", params["component"], proposal.id[:12], status.rollback_reason
                )
            return True
        if status.runs_new_version(self.id) and not live and not self.state.get(f"done:{proposal.id}"):
            wasm = await self.artifacts.fetch(params["wasm_sha256"], proposal.author)
            if wasm is None:
                return False  # try again next tick
            runtime.activate(proposal.id, wasm, params["wasm_sha256"])
            self.state.record_version(
                params["component"],
                proposal.id,
                params["wasm_sha256"],
                "activated",
                f"rollout stage {status.stage_of(self.id)}",
            )
            self.state.set(f"window:{proposal.id}", time.time())
            self.metrics.upgrades.inc()
            logger.info(
                "%s: switched to %s (stage %d)",
                params["component"],
                proposal.id[:12],
                status.stage_of(self.id),
            )
            live = True
        stage = status.needs_report(self.id)
        if stage is None or not live:
            return False
        started = self.state.get(f"window:{proposal.id}")
        if started is None:  # live from before a restart that lost the window start: watch again
            started = time.time()
            self.state.set(f"window:{proposal.id}", started)
        serve_canary(runtime)
        if time.time() - started < self.config.health_window_s:
            return False
        ok, reason, figures = self._judge(runtime, proposal.id, started)
        self._sign("stage_report", stage_report_body(proposal.id, stage, ok, figures, readable_text(reason)))
        if not ok:
            self._sign(
                "rollback",
                rollback_body(
                    proposal.id, readable_text(f"stage {stage} on node {self.id[:12]}: {reason}"), True
                ),
            )
        return False

    def _revert(self, component: str, proposal: Envelope, reason: str) -> bool:
        """Drop the version here and record it; False when it was not live."""
        if not self.runtimes[component].revert(proposal.id):
            return False
        self.state.record_version(
            component, proposal.id, proposal.body["params"]["wasm_sha256"], "reverted", reason
        )
        self.metrics.rollbacks.inc()
        return True

    def _judge(self, runtime: ComponentRuntime, version: str, started: float) -> tuple[bool, str, dict]:
        live = runtime.window(started)
        previous = runtime.previous_of(version)
        inputs = list(runtime.recent_inputs)
        before = runtime.shadow(previous, inputs) if previous and inputs else None
        after = runtime.shadow(version, inputs) if inputs else None
        live.objective = after.objective if after else live.objective
        # Both production objectives (allocation excess, tally fuel per vote) are lower-is-better.
        ok, reason = judge_window(before, live, "min", tolerance_pct=self.config.health_tolerance_pct)
        figures = {
            "calls": live.calls,
            "traps": live.traps,
            "fallbacks": live.fallbacks,
            "objective_before": before.objective if before else None,
            "objective_after": live.objective,
        }
        return ok, reason, figures

    def roll_back_at_once(self, component: str, version: str, reason: str) -> None:
        """A faulting version: a rollback message for every node, and the version dropped here now."""
        proposal = self.ledger.proposal(version)
        if proposal is None or any(
            r.author == self.id for r in self.state.messages(kind="rollback", proposal_id=version)
        ):
            return
        try:
            self._sign(
                "rollback",
                rollback_body(
                    version, readable_text(f"{component} on node {self.id[:12]}: {reason}")[:2000], True
                ),
            )
        except Refusal as refusal:
            logger.warning("could not roll back %s: %s", version[:12], refusal.message)
            return
        if self._revert(
            component, proposal, reason[:2000]
        ):  # here, now; the others on receipt of the rollback
            logger.warning("%s: version %s rolled back at once: %s", component, version[:12], reason)

    def operator_rollback(self, component: str, reason: str) -> Envelope:
        """Roll back the newest upgrade of `component` that is rolling out or completed, on every node."""
        live = []
        for proposal_id, status in self.ledger.rollouts().items():
            if status.state == "rolled_back":
                continue
            proposal = self.state.message(proposal_id)
            if proposal is not None and proposal.body["params"]["component"] == component:
                live.append(proposal)
        if not live:
            raise Refusal(409, f"no upgrade of {component} is live or rolling out: nothing to roll back")
        newest = max(live, key=lambda proposal: (proposal.created_at, proposal.id))
        return self._sign(
            "rollback", rollback_body(newest.id, readable_text(reason) or "operator rollback", False)
        )


def serve_canary(runtime: ComponentRuntime) -> None:
    """Serve one recent production input again during the window, so an idle node still exercises the
    version. A replay is not a new input: kept again, the canaries of a busy tick (one per governance
    message burst) would crowd the few real inputs out of the window the rollout judges, which once
    rolled back an upgrade that was at least 11 % better on every 20 distinct inputs of that stream."""
    inputs = list(runtime.recent_inputs)
    if inputs:
        try:
            runtime.call(inputs[int(time.time() * 7) % len(inputs)], production=False)
        except CaseFailure as error:  # every version failed: counted as faults already
            logger.warning("canary call failed: %s", error)
