"""The components at work for the node: task allocation for its callers, the gossip fan-out, and the vote
tally governance counts with. Every production call passes `served`, so a version that faults is rolled
back at once; the tally is also checked against the reference on every call.

    runtimes = open_runtimes(state)          I/O: compiles each baseline, re-activates the live versions
    services = ComponentServices(runtimes, metrics, on_fault=..., on_mismatch=...)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..components import CaseFailure, get_component
from ..components.raft_consensus.tally import Tally, TallyInput, reference_tally
from ..components.task_allocation.bounds import l2_bound
from ..evolution.build import build_baseline
from ..models import HealthIssue
from .metrics import NodeMetrics
from .peers import PeerLink
from .runtime import BASELINE, COMPONENTS, ComponentRuntime, Served
from .state import NodeState

logger = logging.getLogger(__name__)


def open_runtimes(state: NodeState) -> dict[str, ComponentRuntime]:
    """Each component's baseline, compiled here, with the versions that were live before a restart on top."""
    runtimes = {}
    for name in COMPONENTS:
        component = get_component(name)
        baseline = build_baseline(component)
        runtime = ComponentRuntime(component, baseline.wasm, baseline.sha256)
        for version, sha in state.live_versions(name):
            wasm = state.artifact(sha)
            if wasm is None:
                logger.error(
                    "%s version %s: artifact %s missing; staying on the version below",
                    name,
                    version[:12],
                    sha[:12],
                )
                continue
            runtime.activate(version, wasm, sha)
            logger.info("%s: re-activated version %s after restart", name, version[:12])
        runtimes[name] = runtime
    return runtimes


class ComponentServices:
    def __init__(
        self,
        runtimes: dict[str, ComponentRuntime],
        metrics: NodeMetrics,
        *,
        on_fault: Callable[[str, str, str], None],
        on_mismatch: Callable[[HealthIssue], None],
    ):
        self.runtimes = runtimes
        self.metrics = metrics
        self._on_fault = on_fault  # (component, version, reason): roll the version back on every node
        self._on_mismatch = (
            on_mismatch  # a live tally that disagreed with the reference, for the immune system
        )

    def served(self, component: str, served: Served) -> Served:
        """Every production call passes here: a non-baseline version that faulted (a trap, an invalid output)
        is rolled back at once, on every node, without waiting for the end of its health window."""
        self.metrics.component_calls.labels(component=component, version=served.version[:12]).inc()
        if served.faulted and served.faulted != BASELINE:
            self._on_fault(component, served.faulted, f"a production call faulted: {served.fault}")
        return served

    def allocate(self, items: list[int], capacity: int) -> dict:
        served = self.served(
            "task_allocation", self.runtimes["task_allocation"].call({"capacity": capacity, "items": items})
        )
        return {
            "assignment": served.output,
            "bins": len(set(served.output)),
            "lower_bound": l2_bound(items, capacity) if items else 0,
            "excess_pct": served.objective,
            "version": served.version,
            "fuel": served.fuel,
            "fault": served.fault,
        }

    def choose_peers(self, links: list[PeerLink], message_id: str, fanout: int) -> list[PeerLink]:
        """The peers to forward a message to, as the live gossip_protocol chooses (all of them if it
        fails)."""
        now = time.time()
        case = {
            "latency": [link.latency_ms for link in links],
            "reliability": [link.reliability for link in links],
            "contact_age": [link.contact_age_ms(now) for link in links],
            "fanout": min(fanout, len(links)),
            "seed": int(message_id[:15], 16),
        }
        try:
            served = self.served("gossip_protocol", self.runtimes["gossip_protocol"].call(case))
            return [links[i] for i in served.output if 0 <= i < len(links)]
        except (CaseFailure, ValueError) as error:  # every version failed, or a bad peer table
            logger.warning("gossip_protocol failed (%s); pushing to every peer", error)
            return links

    def tally(self, tally_input: TallyInput) -> Tally:
        """The live tally, checked against the reference on every call (the same input, a few microseconds
        of Python): governance cannot be subverted through the component that counts its votes. A mismatch
        decides by the reference, is reported as a health issue, and the version is rolled back at once."""
        served = self.served("raft_consensus", self.runtimes["raft_consensus"].call(tally_input))
        reference = reference_tally(tally_input)
        if served.output == reference:
            return served.output
        self.metrics.tally_mismatches.inc()
        what = (
            f"raft_consensus version {served.version[:12]} tallied {served.output.describe()}, "
            f"the reference {reference.describe()}"
        )
        logger.error("%s: decided by the reference; rolling the version back", what)
        self._on_mismatch(
            HealthIssue(
                issue_type="tally_mismatch",
                severity="critical",
                current_value=1.0,
                target_value=0.0,
                recommended_action="roll back",
                description=what,
                issue_source="algorithm",
                affected_component="raft_consensus",
            )
        )
        self._on_fault("raft_consensus", served.version, f"live tally disagreed with the reference: {what}")
        return reference

    def versions(self) -> dict:
        return {
            name: {
                "active": runtime.active,
                "sha256": runtime.active_sha256,
                "versions": runtime.versions(),
                "calls": runtime.calls,
                "faults": runtime.faults,
                "fallbacks": runtime.fallbacks,
            }
            for name, runtime in self.runtimes.items()
        }
