"""A Synapse-NG node: the facade the API, the runner and the tests use, composing the rooms.

    node = Node.open(NodeConfig.load(data_dir, port=...))   I/O: identity, state, members, baselines
    await node.start()      background loops: governance, anti-entropy, immune system
    node.ingest(envelope)   a signed message from a peer or a client (Refusal on anything wrong)
    await node.stop()

The rooms, each one idea: admission (messages in), transport and gossip (peers), voting (proposals,
votes, outcomes), rollouts, artifacts, remedies (the immune system at work) and services (the components
at work); the ledger reads what the stored messages say for all of them.

The loops are small and idempotent: each tick recomputes what the messages imply (is a proposal
decided? which rollout stage is active? must this node switch, report, revert?) and does what is
missing. That is what makes a SIGKILL harmless: after a restart the same messages imply the same state,
and the tick finishes (or rolls back) whatever was under way.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..governance import GovernanceRules
from .admission import Admission
from .artifacts import Artifacts
from .config import MEMBERS_FILE, NodeConfig
from .envelope import Envelope
from .gossip import COALESCE_S, Gossip
from .identity import Identity
from .islands import Islands
from .ledger import Ledger
from .membership import load_genesis_members
from .metrics import NodeMetrics
from .operator import operator_token
from .refusal import Accepted
from .remedies import Remedies
from .rollouts import Rollouts
from .runtime import ComponentRuntime
from .services import ComponentServices, open_runtimes
from .state import NodeState
from .transport import PeerTransport
from .voting import Voting

logger = logging.getLogger(__name__)

TICK_S = 0.5


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        identity: Identity,
        state: NodeState,
        runtimes: dict[str, ComponentRuntime],
        operator_token: str,
        provider=None,
    ):
        """The parts opened already (see `open`): no I/O here."""
        self.config = config
        self.identity = identity
        self.id = identity.node_id
        self.operator_token = operator_token
        self.state = state
        self.runtimes = runtimes
        self.metrics = NodeMetrics()
        self.started_at = time.time()
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self.ledger = Ledger(state, config)
        self.transport = PeerTransport(config, self.metrics)
        self.artifacts = Artifacts(self.ledger, self.transport, self.metrics)
        self.admission = Admission(
            identity, state, config, self.metrics, self.ledger, on_new=self._on_new_message
        )
        self.rollouts = Rollouts(
            self.id, state, config, runtimes, self.metrics, self.ledger, self.artifacts, self.admission.sign
        )
        self.remedies = Remedies(
            self.id,
            config,
            state,
            runtimes,
            self.transport.peers,
            self.metrics,
            self.ledger,
            provider=provider,
            create_proposal=self.create_proposal,
            propose_upgrade=self.propose_upgrade,
        )
        self.islands = Islands(
            self.id,
            config,
            state,
            self.ledger,
            self.admission.sign,
            self.remedies.engine,
            self.remedies.propose_code,
            self.remedies.lessons,
            busy=lambda: self.remedies.evolving is not None,
            issue_keys=self.remedies.issue_keys,
        )
        self.remedies.islands = self.islands
        self.metrics.watch_engine(lambda: self.remedies.engine().get_statistics(), lambda: self.config.evolve)
        self.services = ComponentServices(
            runtimes, self.metrics, on_fault=self.rollouts.roll_back_at_once, on_mismatch=self.remedies.report
        )
        self.gossip = Gossip(config, state, self.transport, self.admission, self.services.choose_peers)
        self.voting = Voting(
            self.admission,
            self.ledger,
            self.artifacts,
            self.rollouts,
            self.gossip,
            self.transport,
            self.metrics,
            components=tuple(runtimes),
            tally=self.services.tally,
            on_config_change=self._on_config_change,
        )

    @classmethod
    def open(cls, config: NodeConfig, *, provider=None) -> Node:
        """Open a node's parts in its data directory: its identity and operator token (created on first
        start), its state, the genesis members, the config changes governance approved, and each component's
        baseline compiled, with the versions that were live before a restart on top."""
        config.path.mkdir(parents=True, exist_ok=True)
        identity = Identity.load_or_create(config.path / "identity.key")
        token = operator_token(config.path)
        state = NodeState(config.path / "node.sqlite3")
        load_genesis_members(state, config.path / MEMBERS_FILE)
        state.add_member(identity.node_id, config.url)
        overrides = state.get("config_overrides", {})
        if overrides:
            config.apply_changes(overrides)
        return cls(
            config,
            identity=identity,
            state=state,
            runtimes=open_runtimes(state),
            operator_token=token,
            provider=provider,
        )

    # ------------------------------------------------------------------ what the API and the tests read

    @property
    def rules(self) -> GovernanceRules:
        return self.ledger.rules

    @property
    def peers(self):
        return self.transport.peers

    @property
    def immune(self):
        return self.remedies.immune

    @property
    def last_measurements(self) -> dict[str, float]:
        return self.remedies.last_measurements

    @property
    def actions(self):
        return self.remedies.actions

    @property
    def evolving(self) -> dict | None:
        """The engine run under way: this node's own, or its island of another member's evolution."""
        return self.remedies.evolving or self.islands.current

    def members(self) -> list[str]:
        return self.ledger.members()

    def proposals(self) -> list[Envelope]:
        return self.ledger.proposals()

    def outcome(self, proposal: Envelope) -> dict:
        return self.voting.outcome(proposal)

    def engine(self):
        return self.remedies.engine()

    def component_versions(self) -> dict:
        return self.services.versions()

    # ------------------------------------------------------------------ what they ask it to do

    def ingest(self, envelope: Envelope, *, direct: bool = False, pulled: bool = False) -> Accepted:
        return self.admission.ingest(envelope, direct=direct, pulled=pulled)

    def ingest_batch(self, messages: list, *, pulled: bool = False) -> list[dict]:
        return self.admission.ingest_batch(messages, pulled=pulled)

    def create_proposal(
        self, type: str, title: str, description: str, params: dict, wasm: bytes | None = None
    ) -> Envelope:
        return self.voting.create_proposal(type, title, description, params, wasm)

    def propose_upgrade(self, component: str, wasm: bytes, evidence: dict, **fields) -> Envelope:
        return self.voting.propose_upgrade(component, wasm, evidence, **fields)

    def cast_vote(self, proposal_id: str, choice: str, reason: str = "") -> Envelope:
        return self.voting.cast_vote(proposal_id, choice, reason)

    def operator_rollback(self, component: str, reason: str) -> Envelope:
        return self.rollouts.operator_rollback(component, reason)

    def allocate(self, items: list[int], capacity: int) -> dict:
        return self.services.allocate(items, capacity)

    # ------------------------------------------------------------------ the loops

    async def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        await self.transport.start()
        self._tasks = [
            asyncio.create_task(self._loop(self.voting.tick, lambda: TICK_S, wake=True), name="governance"),
            asyncio.create_task(
                self._loop(self.gossip.anti_entropy, lambda: self.config.anti_entropy_interval_s),
                name="anti-entropy",
            ),
            asyncio.create_task(
                self._loop(self.remedies.tick, lambda: self.config.immune_interval_s), name="immune"
            ),
            asyncio.create_task(self._loop(self.islands.tick, lambda: 1.0), name="islands"),
        ]
        c = self.config
        engine = f"on ({c.llm_provider}{'/' + c.llm_model if c.llm_model else ''})" if c.evolve else "off"
        logger.info(
            "node %s listening on %s: %d members, %d peers, engine %s, automatic voting %s",
            self.id[:16],
            c.url,
            len(self.members()),
            len(self.peers),
            engine,
            "on" if c.auto_vote else "off",
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.remedies.stop()
        await self.islands.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()
        self.state.close()

    async def _loop(self, step, interval, wake: bool = False) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s failed; retrying on the next tick", getattr(step, "__qualname__", step))
            if wake:
                try:
                    await asyncio.wait_for(self._wake.wait(), interval())
                    await asyncio.sleep(COALESCE_S)  # a burst of messages makes one tick, not one each
                except TimeoutError:
                    pass
                self._wake.clear()
            else:
                await asyncio.sleep(interval())

    def _on_new_message(self, envelope: Envelope) -> None:
        """Wake the governance loop and forward the message once, on first receipt (anti-entropy covers
        what this misses). Sync API handlers run in worker threads: hand both to the node's event loop."""
        loop = self._event_loop
        if loop is None:
            return
        if _in_loop(loop):
            self._wake.set()
            loop.create_task(self.gossip.push(envelope))
        else:
            loop.call_soon_threadsafe(self._wake.set)
            asyncio.run_coroutine_threadsafe(self.gossip.push(envelope), loop)

    def _on_config_change(self, changes: dict) -> None:
        if any(key.startswith("target.") or key == "chronic_after" for key in changes):
            self.remedies.reconfigure()


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
