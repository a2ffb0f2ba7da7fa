"""The immune system at work on a node: what it measures, and the remedies it asks for (immune.Remedies):
a config change, or an evolved component from the Evolutionary Engine proposed as a code upgrade.

    await remedies.tick()              measure, then let the immune system act (one evolution at a time)
    remedies.report(issue)             a health issue found elsewhere in the node (a tally mismatch)
    remedies.reconfigure()             the immune system again, after a config change of its targets

One member acts on each issue (the designated one), so five nodes seeing it open one proposal, not five.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..collaboration.agreement import island_members
from ..errors import EngineFailed
from ..governance import readable_text
from ..governance.proposals import MAX_DESCRIPTION_CHARS, MAX_SOURCE_BYTES
from ..immune import ImmuneSystem, targets_from_config
from ..models import GeneratedCode, HealthIssue
from .config import NodeConfig
from .envelope import Envelope
from .ledger import Ledger
from .lessons import Lessons, lessons
from .metrics import NodeMetrics
from .peers import PeerLink
from .refusal import Refusal
from .runtime import ComponentRuntime
from .state import NodeState

if TYPE_CHECKING:
    from .islands import Islands

logger = logging.getLogger(__name__)


class Remedies:
    def __init__(
        self,
        node_id: str,
        config: NodeConfig,
        state: NodeState,
        runtimes: dict[str, ComponentRuntime],
        peers: dict[str, PeerLink],
        metrics: NodeMetrics,
        ledger: Ledger,
        *,
        provider=None,
        create_proposal: Callable[..., Envelope],
        propose_upgrade: Callable[..., Envelope],
    ):
        self.id = node_id
        self.config = config
        self.state = state
        self.runtimes = runtimes
        self.peers = peers
        self.metrics = metrics
        self.ledger = ledger
        self._provider = provider
        self._create_proposal = create_proposal
        self._propose_upgrade = propose_upgrade
        self._engine = None
        self._task: asyncio.Task | None = None
        self.immune = self._immune_system()
        self.last_measurements: dict[str, float] = {}
        # (time, measurements) of the latest checks, for the dashboard's charts: an hour at 5 s a check
        self.measurement_history: deque[tuple[float, dict[str, float]]] = deque(maxlen=720)
        self.actions: deque[dict] = deque(maxlen=200)
        self.evolving: dict | None = None  # the engine run under way, if any
        # node/islands.py's room, when the node has one: evolutions with other members
        self.islands: Islands | None = None

    def _immune_system(self) -> ImmuneSystem:
        return ImmuneSystem(targets_from_config(self.config.targets), chronic_after=self.config.chronic_after)

    def reconfigure(self) -> None:
        self.immune = self._immune_system()

    def report(self, issue: HealthIssue) -> None:
        self.immune.report(issue)
        self.actions.append(
            {
                "at": time.time(),
                "issue_key": f"{issue.affected_component}:{issue.issue_type}",
                "kind": "reported",
                "proposal_id": None,
                "detail": issue.description,
            }
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def measurements(self) -> dict[str, float]:
        since = time.time() - max(self.config.immune_interval_s * 3, 10.0)
        found: dict[str, float] = {}
        allocation = self.runtimes["task_allocation"].window(since)
        if allocation.objective is not None:
            found["allocation_excess_pct"] = allocation.objective
        tally = self.runtimes["raft_consensus"].window(since)
        if tally.objective is not None:
            found["tally_fuel_per_vote"] = tally.objective
        delay = self.state.mean_delay(since, exclude_author=self.id)
        if delay is not None:
            found["dissemination_ms"] = 1000.0 * delay
        tried = [
            link for link in self.peers.values() if link.outcomes
        ]  # a peer not contacted yet says nothing
        if tried:
            found["peers_reachable"] = sum(link.reachable for link in tried) / len(tried)
        faults = sum(r.faults + r.fallbacks for r in self.runtimes.values())
        found["component_faults"] = float(faults - self.state.get("faults_seen", 0))
        self.state.set("faults_seen", faults)
        return found

    async def tick(self) -> None:
        if self._task is not None and not self._task.done():
            return  # an evolution is still running: the next check waits for it
        self.last_measurements = self.measurements()
        self.measurement_history.append((time.time(), self.last_measurements))
        self._task = asyncio.create_task(self._step(self.last_measurements))

    async def _step(self, measurements: dict[str, float]) -> None:
        try:
            actions = await self.immune.step(measurements, self)
        except Exception:
            logger.exception("the immune system's response failed")
            return
        for action in actions:
            self.actions.append({"at": time.time(), **action.to_dict()})
            if action.kind not in ("skipped_open_proposal", "reported"):
                logger.info("immune system: %s %s (%s)", action.kind, action.issue_key, action.detail)

    def _designated(self, issue_key: str) -> str:
        """The one member that acts on an issue: the first island of its evolution (the same rank)."""
        return island_members(issue_key, self.ledger.members(), 1)[0]

    # ------------------------------------------------------------------ immune.Remedies

    def open_proposal_for(self, issue_key: str) -> str | None:
        designated = self._designated(issue_key)
        if designated != self.id:
            return f"handled by node {designated[:12]}"
        now = time.time()
        for proposal in self.ledger.proposals():
            if proposal.body["params"].get("issue") != issue_key:
                continue
            if not self.ledger.decided(proposal.id):
                return proposal.id
            if now - proposal.body["deadline"] < self.config.proposal_cooldown_s:
                return proposal.id
            status = self.ledger.rollouts().get(proposal.id)
            if status is not None and status.state == "in_progress":
                return proposal.id
        return None

    def propose_config(self, issue: HealthIssue, changes: dict, issue_key: str) -> str | None:
        params = {"changes": changes, "issue": issue_key}
        try:
            return self._create_proposal(
                "config_change", f"config remedy for {issue_key}", readable_text(issue.description), params
            ).id
        except Refusal as refusal:
            logger.warning("config remedy for %s refused: %s", issue_key, refusal.message)
            return None

    async def evolve(self, issue: HealthIssue) -> GeneratedCode | None:
        if not self.config.evolve or issue.affected_component not in self.runtimes:
            return None
        engine = self.engine()
        self.metrics.evolutions.inc()
        self.evolving = {
            "component": issue.affected_component,
            "since": time.time(),
            "issue": issue.description,
        }
        try:
            while self.islands is not None and self.islands.searching:
                await asyncio.sleep(1.0)  # an island of another member's evolution: one search at a time
            if self.islands is not None and self.config.islands > 1:
                generated = await self.islands.lead(issue, self.immune.issue_key(issue))
            else:
                learned = self.lessons(issue.affected_component, self.config.evolve_language)
                generated = await engine.generate_optimized_code(
                    issue,
                    {  # the past first: the problem the model reads is cut at its end when long
                        **learned.context(),
                        "node": self.id[:12],
                        "measurements": self.last_measurements,
                    },
                    deployed=learned.deployed,
                    banned=tuple(learned.banned),
                )
        finally:
            self.evolving = None
        result = engine.last_result
        if result is not None and result.model_gave_up:
            # Not "nothing better was found": the engine could not work as configured (a model that
            # refuses or fails every call). The immune system reports it as an evolve_error, for an
            # operator to see, even when the starting points and the tuner found something without the
            # model: such a run ends unconfirmed (search.py), its candidates stay in the engine's store.
            raise EngineFailed(
                f"the engine's run {result.run_id} on {issue.affected_component} stopped: {result.stopped}"
            )
        return generated

    def lessons(self, component: str, language: str) -> Lessons:
        return lessons(self.ledger, component, language)

    def issue_keys(self) -> set[str]:
        """The "component:metric" keys this node's immune system may send to the engine."""
        return {f"{t.component}:{t.metric}" for t in self.immune.targets if t.component in self.runtimes}

    @property
    def engine_enabled(self) -> bool:
        return self.config.evolve

    @property
    def engine_created(self) -> bool:
        return self._engine is not None

    def engine(self):
        """The Evolutionary Engine, created on first use (imported then: a node that never evolves never
        loads it)."""
        if self._engine is None:
            from ..evolution.engine import EvolutionaryEngineManager
            from ..evolution.search import Budget, SearchConfig
            from ..models import CodeLanguage, LLMProviderConfig

            c = self.config
            llm = LLMProviderConfig(
                provider_name=c.llm_provider,
                model_name=c.llm_model,
                api_endpoint=c.llm_endpoint or "",
                timeout_seconds=c.llm_timeout_s,
            )
            self._engine = EvolutionaryEngineManager(
                llm,
                workspace_dir=str(c.engine_path),
                provider=self._provider,
                budget=Budget(samples=c.evolve_samples, minutes=c.evolve_minutes),
                search_config=SearchConfig(
                    seed=c.evolve_seed,
                    starting_points=c.evolve_starting_points,
                    language=CodeLanguage(c.evolve_language),
                ),
            )
        return self._engine

    def propose_code(self, issue: HealthIssue, code: GeneratedCode, issue_key: str) -> str | None:
        component = (
            code.target_component if code.target_component in self.runtimes else issue.affected_component
        )
        try:
            return self._propose_upgrade(
                component,
                code.wasm_binary,
                code.evidence,
                source=code.source_code[:MAX_SOURCE_BYTES],
                language=code.language.value,
                title=f"evolved {component}",
                description=readable_text(code.description)[:MAX_DESCRIPTION_CHARS],
                issue=issue_key,
                **(code.collaboration or {}),
            ).id
        except Refusal as refusal:
            logger.warning("code upgrade for %s refused: %s", issue_key, refusal.message)
            return None
