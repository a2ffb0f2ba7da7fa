"""A Synapse-NG node: identity, state, the components at work, governance, rollouts and the immune system.

    node = Node(NodeConfig.load(data_dir, port=...))
    await node.start()      background loops: governance, anti-entropy, immune system
    node.ingest(envelope)   a signed message from a peer or a client (Refusal on anything wrong)
    await node.stop()

The loops are small and idempotent: each tick recomputes what the messages imply (is a proposal
decided? which rollout stage is active? must this node switch, report, revert?) and does what is
missing. That is what makes a SIGKILL harmless: after a restart the same messages imply the same state,
and the tick finishes (or rolls back) whatever was under way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

import httpx

from ..components import CaseFailure, get_component
from ..components.raft_consensus import Tally, TallyInput
from ..errors import EngineFailed, UsageError
from ..evolution.build import build_baseline
from ..governance import (
    GovernanceRules,
    ProposalError,
    decide,
    proposal_body,
    validate_proposal_body,
    validate_vote_body,
    verify_code_upgrade,
    vote_body,
)
from ..immune import ImmuneSystem, targets_from_config
from ..models import GeneratedCode, HealthIssue
from ..upgrade import (
    judge_window,
    rollback_body,
    rollout_status,
    stage_report_body,
    validate_rollback_body,
    validate_stage_report_body,
)
from .config import MEMBERS_FILE, NodeConfig, check_changes
from .envelope import (
    Envelope,
    EnvelopeError,
    SignatureError,
    sign_envelope,
    verify_envelope,
)
from .identity import Identity
from .metrics import NodeMetrics
from .peers import PeerLink
from .runtime import ComponentRuntime
from .state import NodeState

logger = logging.getLogger(__name__)

COMPONENTS = ("task_allocation", "raft_consensus", "gossip_protocol")
KIND_ORDER = {"proposal": 0, "vote": 1, "stage_report": 2, "rollback": 3}
TICK_S = 0.5
FETCH_RETRY_S = 3.0
COALESCE_S = 0.1
FETCH_BATCH = 500


class Refusal(Exception):
    """A message or request this node will not accept; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Accepted:
    id: str
    new: bool


class Node:
    def __init__(self, config: NodeConfig, *, provider=None):
        self.config = config
        config.path.mkdir(parents=True, exist_ok=True)
        self.identity = Identity.load_or_create(config.path / "identity.key")
        self.id = self.identity.node_id
        self.state = NodeState(config.path / "node.sqlite3")
        self.metrics = NodeMetrics()
        self._load_members()
        self.state.add_member(self.id, config.url)
        overrides = self.state.get("config_overrides", {})
        if overrides:
            config.apply_changes(overrides)
        self.runtimes = {name: self._runtime(name) for name in COMPONENTS}
        self.immune = ImmuneSystem(targets_from_config(config.targets), chronic_after=config.chronic_after)
        self.peers: dict[str, PeerLink] = {url.rstrip("/"): PeerLink(url.rstrip("/")) for url in config.peers}
        self._provider = provider
        self._engine = None
        self._tasks: list[asyncio.Task] = []
        self._client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._verifying: set[str] = set()
        self._outbox: list[Envelope] = []
        self._proposal_cache: dict[str, Envelope] = {}
        self._settled: set[str] = set()  # proposals with nothing left to do here
        self._voted_on: set[str] = set()
        self._fetch_failed: dict[str, float] = {}  # artifact -> when no peer had it (retried after FETCH_RETRY_S)
        self._immune_task: asyncio.Task | None = None
        self.last_measurements: dict[str, float] = {}
        self.actions: deque[dict] = deque(maxlen=200)
        self.evolving: dict | None = None  # the engine run under way, if any
        self.started_at = time.time()

    # ------------------------------------------------------------------ set-up

    def _load_members(self) -> None:
        file = self.config.path / MEMBERS_FILE
        if not file.exists():
            return
        try:
            members = json.loads(file.read_text())
            for entry in members:
                self.state.add_member(str(entry["node_id"]), entry.get("url"))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(f"{file} must be a JSON list of {{node_id, url}}: {error}") from None

    def _runtime(self, name: str) -> ComponentRuntime:
        component = get_component(name)
        baseline = build_baseline(component)
        runtime = ComponentRuntime(component, baseline.wasm, baseline.sha256)
        for version, sha in self.state.live_versions(name):
            wasm = self.state.artifact(sha)
            if wasm is None:
                logger.error("%s version %s: artifact %s missing; staying on the version below", name, version[:12], sha[:12])
                continue
            runtime.activate(version, wasm, sha)
            logger.info("%s: re-activated version %s after restart", name, version[:12])
        return runtime

    @property
    def rules(self) -> GovernanceRules:
        c = self.config
        return GovernanceRules(quorum=c.quorum, config_threshold=tuple(c.config_threshold), code_threshold=tuple(c.code_threshold),
                               deadline_s=c.deadline_s, grace_s=c.grace_s)  # fmt: skip

    def members(self) -> list[str]:
        return sorted(self.state.members())

    async def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(timeout=self.config.peer_timeout_s)
        self._tasks = [
            asyncio.create_task(self._loop(self.governance_tick, lambda: TICK_S, wake=True), name="governance"),
            asyncio.create_task(self._loop(self.anti_entropy, lambda: self.config.anti_entropy_interval_s), name="anti-entropy"),
            asyncio.create_task(self._loop(self.immune_tick, lambda: self.config.immune_interval_s), name="immune"),
        ]
        c = self.config
        engine = f"on ({c.llm_provider}{'/' + c.llm_model if c.llm_model else ''})" if c.evolve else "off"
        logger.info("node %s listening on %s: %d members, %d peers, engine %s, automatic voting %s",
                    self.id[:16], c.url, len(self.members()), len(self.peers), engine, "on" if c.auto_vote else "off")  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks + ([self._immune_task] if self._immune_task else []):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client:
            await self._client.aclose()
        self.state.close()

    async def _loop(self, step, interval, wake: bool = False) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s failed; retrying on the next tick", getattr(step, "__name__", step))
            if wake:
                try:
                    await asyncio.wait_for(self._wake.wait(), interval())
                    await asyncio.sleep(COALESCE_S)  # a burst of messages makes one tick, not one each
                except TimeoutError:
                    pass
                self._wake.clear()
            else:
                await asyncio.sleep(interval())

    # ------------------------------------------------------------------ messages in

    def ingest(self, envelope: Envelope, *, direct: bool = False) -> Accepted:
        """Verify and store one message. `direct`: submitted by a client (a replay is then a 409)."""
        if envelope.author not in self.state.members():
            raise Refusal(403, f"unknown identity {envelope.author[:16]}: not a member of this network")
        try:
            verify_envelope(envelope)
        except SignatureError as error:
            raise Refusal(401, str(error)) from None
        if self.state.has_message(envelope.id):
            if direct:
                raise Refusal(409, f"message {envelope.id[:16]} was already received (a replay is never counted twice)")
            return Accepted(envelope.id, False)
        self._check_body(envelope)
        new = self.state.add_message(envelope)
        if new:
            self.metrics.messages.labels(kind=envelope.kind).inc()
            if envelope.kind == "proposal":
                self.metrics.proposals.labels(type=envelope.body.get("type", "?")).inc()
            if envelope.author != self.id:
                self.metrics.dissemination.observe(max(0.0, time.time() - envelope.created_at))
            self._on_new_message(envelope)
        return Accepted(envelope.id, new)

    def _on_new_message(self, envelope: Envelope) -> None:
        """Wake the governance loop and forward the message once, on first receipt (anti-entropy covers
        what this misses). Sync API handlers run in worker threads: hand both to the node's event loop."""
        loop = self._event_loop
        if loop is None:
            return
        if _in_loop(loop):
            self._wake.set()
            loop.create_task(self.push(envelope))
        else:
            loop.call_soon_threadsafe(self._wake.set)
            asyncio.run_coroutine_threadsafe(self.push(envelope), loop)

    def _check_body(self, envelope: Envelope) -> None:
        body = envelope.body
        try:
            if envelope.kind == "proposal":
                validate_proposal_body(body)
                if body["type"] == "config_change":
                    check_changes(body["params"]["changes"])
                self._check_rules(body)
                return
            if envelope.kind == "vote":
                validate_vote_body(body)
            elif envelope.kind == "stage_report":
                validate_stage_report_body(body)
            elif envelope.kind == "rollback":
                validate_rollback_body(body)
        except (ProposalError, UsageError, ValueError) as error:
            raise Refusal(422, f"invalid {envelope.kind}: {error}") from None
        proposal = self.state.message(body["proposal_id"])
        if proposal is None or proposal.kind != "proposal":
            raise Refusal(404, f"unknown proposal {body['proposal_id'][:16]}: this node has no such proposal (yet)")
        if envelope.kind == "vote" and envelope.created_at > proposal.body["deadline"]:
            raise Refusal(409, f"proposal {proposal.id[:16]} closed at its deadline; the vote came after it")
        if envelope.kind in ("stage_report", "rollback") and proposal.body["type"] != "code_upgrade":
            raise Refusal(422, f"{envelope.kind} for proposal {proposal.id[:16]}, which is not a code upgrade")

    def _check_rules(self, body: dict) -> None:
        """A proposer may ask for more than this node's rules, never for less: a code upgrade with a
        1/65535 threshold or a 1 % quorum is refused, not voted on."""
        num, den = body["threshold"]
        want_num, want_den = self.rules.threshold_for(body["type"])
        if num * want_den < want_num * den:
            raise Refusal(422, f"a {body['type']} needs a threshold of at least {want_num}/{want_den} here, not {num}/{den}")
        if body["quorum"] < self.rules.quorum:
            raise Refusal(422, f"a proposal needs a quorum of at least {self.rules.quorum:g} of the members here, not {body['quorum']:g}")

    def sign(self, kind: str, body: dict) -> Envelope:
        envelope = sign_envelope(self.identity, kind, body)
        self.ingest(envelope)
        return envelope

    # ------------------------------------------------------------------ local actions

    def create_proposal(self, type: str, title: str, description: str, params: dict, wasm: bytes | None = None) -> Envelope:
        try:
            body = proposal_body(type, title, description, params, rules=self.rules, now=time.time())
        except (ProposalError, ValueError) as error:
            raise Refusal(422, str(error)) from None
        if type == "config_change":
            try:
                check_changes(params.get("changes"))
            except UsageError as error:
                raise Refusal(422, str(error)) from None
        if wasm is not None:
            self.state.put_artifact(wasm)
        return self.sign("proposal", body)

    def propose_upgrade(self, component: str, wasm: bytes, evidence: dict, *, source: str = "", language: str = "rust",
                        title: str = "", description: str = "", issue: str = "") -> Envelope:
        """A code_upgrade from an operator or the immune system: the improvement claimed is the evidence's,
        and every honest node re-checks all of it before it votes."""
        if component not in self.runtimes:
            raise Refusal(404, f"unknown component {component!r}; known: {', '.join(self.runtimes)}")
        aggregate = evidence.get("aggregate") if isinstance(evidence, dict) else None
        if not isinstance(aggregate, dict) or not isinstance(aggregate.get("improvement_pct"), (int, float)):
            raise Refusal(422, "evidence has no aggregate improvement_pct: pass the JSON `synapse-ng evaluate --evidence-out` writes")
        params = {
            "component": component, "wasm_sha256": hashlib.sha256(wasm).hexdigest(), "wasm_size": len(wasm),
            "language": language, "source": source, "evidence": evidence,
            "improvement_pct": float(aggregate["improvement_pct"]), "issue": issue or f"{component}:operator",
        }  # fmt: skip
        return self.create_proposal("code_upgrade", title or f"upgrade {component}", description, params, wasm=wasm)

    def cast_vote(self, proposal_id: str, choice: str, reason: str = "") -> Envelope:
        proposal = self.state.message(proposal_id)
        if proposal is None or proposal.kind != "proposal":
            raise Refusal(404, f"unknown proposal {proposal_id[:16]}")
        if time.time() > proposal.body["deadline"]:
            raise Refusal(409, f"proposal {proposal_id[:16]} is closed (its deadline has passed)")
        try:
            body = vote_body(proposal_id, choice, time.time_ns(), reason[:2000])
        except (ProposalError, ValueError) as error:
            raise Refusal(422, str(error)) from None
        envelope = self.sign("vote", body)
        self._voted_on.add(proposal_id)
        self.metrics.votes.labels(choice=choice).inc()
        return envelope

    def operator_rollback(self, component: str, reason: str) -> Envelope:
        """Roll back the newest upgrade of `component` that is rolling out or completed, on every node."""
        live = [
            self.state.message(proposal_id) for proposal_id, status in self.rollouts().items()
            if status.state != "rolled_back" and self.state.message(proposal_id).body["params"]["component"] == component
        ]  # fmt: skip
        if not live:
            raise Refusal(409, f"no upgrade of {component} is live or rolling out: nothing to roll back")
        newest = max(live, key=lambda proposal: (proposal.created_at, proposal.id))
        return self.sign("rollback", rollback_body(newest.id, reason or "operator rollback", False))

    # ------------------------------------------------------------------ governance

    def tally(self, tally_input: TallyInput) -> Tally:
        served = self.runtimes["raft_consensus"].call(tally_input)
        self.metrics.component_calls.labels(component="raft_consensus", version=served.version[:12]).inc()
        return served.output

    def outcome(self, proposal: Envelope) -> dict:
        cached = self.state.get(f"outcome:{proposal.id}")
        if cached:
            return cached
        votes = self.state.messages(kind="vote", proposal_id=proposal.id)
        closes_at = proposal.body["deadline"] + self.config.grace_s
        if time.time() > closes_at and not self._synced_since(closes_at):
            # Past the deadline, but this node may lack votes (it was down or cut off, or a push is still in
            # flight): the decision waits until it has pulled from a majority of its peers since then.
            data = decide(proposal.body, votes, self.members(), now=proposal.body["deadline"], grace_s=0.0).to_dict()
            data["status"] = "closing"
            return data
        result = decide(proposal.body, votes, self.members(), now=time.time(), grace_s=self.config.grace_s, tally_fn=self.tally)
        data = result.to_dict()
        if result.status != "open":
            self.state.set(f"outcome:{proposal.id}", data)
            logger.info("proposal %s (%s) decided: %s", proposal.id[:12], proposal.body["type"], result.status)
        return data

    def _synced_since(self, moment: float) -> bool:
        """Whether a majority of the peers (rounded up) were pulled from completely since `moment`."""
        links = list(self.peers.values())
        synced = sum(1 for link in links if link.synced_at is not None and link.synced_at >= moment)
        return synced >= math.ceil(len(links) / 2)

    def proposals(self) -> list[Envelope]:
        """Every proposal, oldest first (each parsed once: a signed proposal never changes)."""
        ids = self.state.ids(kind="proposal")
        for proposal_id in ids:
            if proposal_id not in self._proposal_cache:
                self._proposal_cache[proposal_id] = self.state.message(proposal_id)
        return [self._proposal_cache[proposal_id] for proposal_id in ids]

    def rollouts(self) -> dict:
        found = {}
        for proposal in self.proposals():
            if proposal.body["type"] != "code_upgrade":
                continue
            outcome = self.state.get(f"outcome:{proposal.id}")
            if not outcome or outcome["status"] != "approved":
                continue
            found[proposal.id] = self._rollout_status(proposal)
        return found

    def _rollout_status(self, proposal: Envelope):
        """The rollout of an approved code upgrade, as its stage reports and rollbacks say."""
        return rollout_status(
            proposal.id, self.members(),
            self.state.messages(kind="stage_report", proposal_id=proposal.id),
            self.state.messages(kind="rollback", proposal_id=proposal.id),
            tuple(self.config.stage_fractions),
        )  # fmt: skip

    async def governance_tick(self) -> None:
        """Vote on open proposals, decide closed ones, apply what was approved. Proposals with nothing left
        to do (rejected, applied, rolled back) are settled and skipped from then on."""
        for proposal in self.proposals():
            if proposal.id in self._settled:
                continue
            if time.time() <= proposal.body["deadline"] + self.config.grace_s:  # open
                if proposal.body["type"] == "code_upgrade":
                    # Fetch the WASM while the vote is open, so it spreads with the proposal (and this node can
                    # serve it on) whether or not anyone here verifies it automatically.
                    await self.fetch_artifact(proposal.body["params"]["wasm_sha256"], proposal.author)
                if self.config.auto_vote and not self._voted(proposal.id):
                    await self._auto_vote(proposal)
                continue
            status = self.outcome(proposal)["status"]
            if status == "closing":
                continue
            if status != "approved":
                self._settled.add(proposal.id)
            elif proposal.body["type"] == "config_change":
                self._apply_config(proposal)
                self._settled.add(proposal.id)
            elif await self._drive_rollout(proposal):
                self._settled.add(proposal.id)

    def _voted(self, proposal_id: str) -> bool:
        if proposal_id not in self._voted_on and any(
            v.author == self.id for v in self.state.messages(kind="vote", proposal_id=proposal_id)
        ):
            self._voted_on.add(proposal_id)
        return proposal_id in self._voted_on

    async def _auto_vote(self, proposal: Envelope) -> None:
        if proposal.body["type"] == "config_change":
            self.cast_vote(proposal.id, "yes", "a well-formed change of tunable keys")
            return
        if proposal.id in self._verifying:
            return
        self._verifying.add(proposal.id)
        try:
            params = proposal.body["params"]
            wasm = await self.fetch_artifact(params["wasm_sha256"], proposal.author)
            if wasm is None:
                verdict = {"ok": False, "reasons": [f"artifact {params['wasm_sha256'][:16]} not found at any peer, or it does not match its hash"]}
            else:
                result = await asyncio.to_thread(verify_code_upgrade, params, wasm, time_limit_s=self.config.verify_time_limit_s)
                verdict = result.to_dict()
            self.state.set(f"verdict:{proposal.id}", verdict)
            if time.time() <= proposal.body["deadline"]:
                reason = "verified: hash, static checks, correctness and evidence reproduced" if verdict["ok"] else "; ".join(verdict["reasons"])[:2000]
                self.cast_vote(proposal.id, "yes" if verdict["ok"] else "no", reason)
        finally:
            self._verifying.discard(proposal.id)

    def _apply_config(self, proposal: Envelope) -> None:
        key = f"applied:{proposal.id}"
        if self.state.get(key):
            return
        changes = proposal.body["params"]["changes"]
        self.config.apply_changes(changes)
        overrides = {**self.state.get("config_overrides", {}), **changes}
        self.state.set("config_overrides", overrides)
        self.state.set(key, time.time())
        self.immune = ImmuneSystem(targets_from_config(self.config.targets), chronic_after=self.config.chronic_after) if any(
            k.startswith("target.") or k == "chronic_after" for k in changes
        ) else self.immune
        logger.info("applied config change %s: %s", proposal.id[:12], changes)

    async def _drive_rollout(self, proposal: Envelope) -> bool:
        """One step of this node's part in a rollout; True once it is rolled back here for good (a completed
        rollout stays watched: an operator may still roll it back)."""
        status = self._rollout_status(proposal)
        params = proposal.body["params"]
        runtime = self.runtimes.get(params["component"])
        if runtime is None:
            return True
        live = proposal.id in runtime.versions()
        if status.state == "rolled_back":  # final: nothing can bring it back
            if live:
                runtime.revert(proposal.id)
                self.state.record_version(params["component"], proposal.id, params["wasm_sha256"], "reverted", status.rollback_reason or "rolled back")
                self.metrics.rollbacks.inc()
                logger.warning("%s: rolled back %s: %s", params["component"], proposal.id[:12], status.rollback_reason)
            return True
        if status.runs_new_version(self.id) and not live and not self.state.get(f"done:{proposal.id}"):
            wasm = await self.fetch_artifact(params["wasm_sha256"], proposal.author)
            if wasm is None:
                return False  # try again next tick
            runtime.activate(proposal.id, wasm, params["wasm_sha256"])
            self.state.record_version(params["component"], proposal.id, params["wasm_sha256"], "activated", f"rollout stage {status.stage_of(self.id)}")
            self.state.set(f"window:{proposal.id}", time.time())
            self.metrics.upgrades.inc()
            logger.info("%s: switched to %s (stage %d)", params["component"], proposal.id[:12], status.stage_of(self.id))
            live = True
        stage = status.needs_report(self.id)
        if stage is None or not live:
            return False
        started = self.state.get(f"window:{proposal.id}")
        if started is None:  # live from before a restart that lost the window start: watch again
            started = time.time()
            self.state.set(f"window:{proposal.id}", started)
        self._canary(runtime)
        if time.time() - started < self.config.health_window_s:
            return False
        ok, reason, figures = self._judge(runtime, proposal.id, started)
        self.sign("stage_report", stage_report_body(proposal.id, stage, ok, figures, reason))
        if not ok:
            self.sign("rollback", rollback_body(proposal.id, f"stage {stage} on node {self.id[:12]}: {reason}", True))
        return False

    def _canary(self, runtime: ComponentRuntime) -> None:
        """Serve one recent production input during the window, so an idle node still exercises the version."""
        inputs = list(runtime.recent_inputs)
        if inputs:
            try:
                runtime.call(inputs[int(time.time() * 7) % len(inputs)])
            except CaseFailure as error:  # every version failed: counted as faults already
                logger.warning("canary call failed: %s", error)

    def _judge(self, runtime: ComponentRuntime, version: str, started: float) -> tuple[bool, str, dict]:
        live = runtime.window(started)
        previous = runtime.previous_of(version)
        inputs = list(runtime.recent_inputs)
        before = runtime.shadow(previous, inputs) if previous and inputs else None
        after = runtime.shadow(version, inputs) if inputs else None
        live.objective = after.objective if after else live.objective
        # Both production objectives (allocation excess, tally fuel per vote) are lower-is-better.
        ok, reason = judge_window(before, live, "min", tolerance_pct=self.config.health_tolerance_pct)
        figures = {"calls": live.calls, "traps": live.traps, "fallbacks": live.fallbacks,
                   "objective_before": before.objective if before else None, "objective_after": live.objective}  # fmt: skip
        return ok, reason, figures

    # ------------------------------------------------------------------ gossip

    async def push(self, envelope: Envelope) -> None:
        """Queue a new message for forwarding; the messages of one short interval go out together, one
        POST per chosen peer, so a burst costs a few requests instead of one per message and peer."""
        self._outbox.append(envelope)
        if len(self._outbox) == 1:
            await asyncio.sleep(COALESCE_S)
            await self._flush()

    async def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch or self._client is None:
            return
        per_link: dict[str, list[dict]] = {}
        for envelope in batch:
            # Forward to peers chosen by the live gossip_protocol, never back to the author.
            links = [link for link in self.peers.values() if link.node_id != envelope.author]
            for link in self.choose_peers(links, envelope.id) if links else []:
                per_link.setdefault(link.url, []).append(envelope.to_dict())
        await asyncio.gather(*(self._post(self.peers[url], "/api/gossip", {"messages": messages}) for url, messages in per_link.items()))

    def choose_peers(self, links: list[PeerLink], message_id: str) -> list[PeerLink]:
        now = time.time()
        case = {
            "latency": [link.latency_ms for link in links],
            "reliability": [link.reliability for link in links],
            "contact_age": [link.contact_age_ms(now) for link in links],
            "fanout": min(self.config.gossip_fanout, len(links)),
            "seed": int(message_id[:15], 16),
        }
        try:
            served = self.runtimes["gossip_protocol"].call(case)
            self.metrics.component_calls.labels(component="gossip_protocol", version=served.version[:12]).inc()
            return [links[i] for i in served.output if 0 <= i < len(links)]
        except (CaseFailure, ValueError) as error:  # every version failed, or a bad peer table
            logger.warning("gossip_protocol failed (%s); pushing to every peer", error)
            return links

    async def _post(self, link: PeerLink, path: str, payload: dict) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self._client.post(link.url + path, json=payload)
            link.record(response.status_code < 500, time.perf_counter() - started)
            return response
        except httpx.HTTPError:
            link.record(False, time.perf_counter() - started)
            return None

    async def _get(self, link: PeerLink, path: str) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self._client.get(link.url + path)
            link.record(response.status_code < 500, time.perf_counter() - started)
            return response
        except httpx.HTTPError:
            link.record(False, time.perf_counter() - started)
            return None

    async def anti_entropy(self) -> None:
        """Pull from every peer at once (a dead peer's time-out must not delay the live ones)."""
        await asyncio.gather(*(self._pull(link) for link in list(self.peers.values())))

    async def _pull(self, link: PeerLink) -> None:
        """Learn the peer's identity, then fetch every message it has and this node lacks."""
        if link.node_id is None:
            response = await self._get(link, "/api/identity")
            if response is not None and response.status_code == 200:
                node_id = response.json().get("node_id")
                if isinstance(node_id, str) and len(node_id) == 64:
                    link.node_id = node_id
                    self.state.add_member(node_id, link.url)
            return
        started = time.time()
        # Only what the peer stored since the last complete pull (its own sequence numbers): a pull costs
        # what is new, not the size of the whole history.
        response = await self._get(link, f"/api/gossip/inventory?after={link.cursor}")
        if response is None or response.status_code != 200:
            return
        inventory = response.json()
        missing = [i for i in inventory.get("ids", []) if not self.state.has_message(i)]
        if missing:
            fetched = await self._post(link, "/api/gossip/fetch", {"ids": missing[:FETCH_BATCH]})
            if fetched is None or fetched.status_code != 200:
                return
            results = self.ingest_batch(fetched.json().get("messages", []))
            if len(missing) > FETCH_BATCH or any(r.get("status") == 404 for r in results):
                return  # more to fetch, or a vote whose proposal is still to come: pull again from here
        link.cursor = int(inventory.get("seq", link.cursor))
        link.synced_at = started

    def ingest_batch(self, messages: list) -> list[dict]:
        """Messages from a peer, proposals first; each one accepted or refused on its own."""
        parsed, results = [], []
        for raw in messages:
            try:
                parsed.append(Envelope.from_dict(raw))
            except EnvelopeError as error:
                results.append({"ok": False, "status": 422, "error": str(error)})
        for envelope in sorted(parsed, key=lambda e: (KIND_ORDER.get(e.kind, 9), e.created_at, e.id)):
            try:
                accepted = self.ingest(envelope)
                results.append({"ok": True, "id": accepted.id, "new": accepted.new})
            except Refusal as refusal:
                results.append({"ok": False, "id": envelope.id, "status": refusal.status, "error": refusal.message})
        return results

    async def fetch_artifact(self, sha256: str, author: str | None = None) -> bytes | None:
        wasm = self.state.artifact(sha256)
        if wasm is not None:
            return wasm
        if time.time() - self._fetch_failed.get(sha256, 0.0) < FETCH_RETRY_S:
            return None
        links = sorted(self.peers.values(), key=lambda link: link.node_id != author)
        for link in links:
            response = await self._get(link, f"/api/artifacts/{sha256}")
            if response is None or response.status_code != 200:
                continue
            if hashlib.sha256(response.content).hexdigest() != sha256:
                logger.warning("peer %s sent an artifact that does not match %s; ignored", link.url, sha256[:16])
                continue
            self.state.put_artifact(response.content)
            return response.content
        self._fetch_failed[sha256] = time.time()
        return None

    # ------------------------------------------------------------------ the immune system

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
        tried = [link for link in self.peers.values() if link.outcomes]  # a peer not contacted yet says nothing
        if tried:
            found["peers_reachable"] = sum(link.reachable for link in tried) / len(tried)
        faults = sum(r.faults + r.fallbacks for r in self.runtimes.values())
        found["component_faults"] = float(faults - self.state.get("faults_seen", 0))
        self.state.set("faults_seen", faults)
        return found

    async def immune_tick(self) -> None:
        if self._immune_task is not None and not self._immune_task.done():
            return  # an evolution is still running: the next check waits for it
        self.last_measurements = self.measurements()
        self._immune_task = asyncio.create_task(self._immune_step(self.last_measurements))

    async def _immune_step(self, measurements: dict[str, float]) -> None:
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
        """The one member that acts on an issue, so five nodes seeing it open one proposal, not five."""
        return min(self.members(), key=lambda m: hashlib.sha256((issue_key + m).encode()).hexdigest())

    def open_proposal_for(self, issue_key: str) -> str | None:
        designated = self._designated(issue_key)
        if designated != self.id:
            return f"handled by node {designated[:12]}"
        now = time.time()
        for proposal in self.proposals():
            if proposal.body["params"].get("issue") != issue_key:
                continue
            outcome = self.state.get(f"outcome:{proposal.id}")
            if not outcome:
                return proposal.id
            if now - proposal.body["deadline"] < self.config.proposal_cooldown_s:
                return proposal.id
            status = self.rollouts().get(proposal.id)
            if status is not None and status.state == "in_progress":
                return proposal.id
        return None

    def propose_config(self, issue: HealthIssue, changes: dict, issue_key: str) -> str | None:
        params = {"changes": changes, "issue": issue_key}
        try:
            return self.create_proposal("config_change", f"config remedy for {issue_key}", issue.description, params).id
        except Refusal as refusal:
            logger.warning("config remedy for %s refused: %s", issue_key, refusal.message)
            return None

    async def evolve(self, issue: HealthIssue) -> GeneratedCode | None:
        if not self.config.evolve or issue.affected_component not in self.runtimes:
            return None
        engine = self.engine()
        self.metrics.evolutions.inc()
        self.evolving = {"component": issue.affected_component, "since": time.time(), "issue": issue.description}
        try:
            generated = await engine.generate_optimized_code(issue, {"node": self.id[:12], "measurements": self.last_measurements})
        finally:
            self.evolving = None
            self.metrics.candidates.set(engine.get_statistics().get("total_generations", 0))
        result = engine.last_result
        if generated is None and result is not None and result.model_gave_up:
            # Not "nothing better was found": the engine could not work. The immune system reports it
            # as an evolve_error, for an operator to see.
            raise EngineFailed(f"the engine's run {result.run_id} on {issue.affected_component} stopped: {result.reason}")
        return generated

    def engine(self):
        if self._engine is None:
            from ..evolution.engine import EvolutionaryEngineManager
            from ..evolution.search import Budget, SearchConfig
            from ..models import LLMProviderConfig

            c = self.config
            llm = LLMProviderConfig(provider_name=c.llm_provider, model_name=c.llm_model, api_endpoint=c.llm_endpoint or "")
            self._engine = EvolutionaryEngineManager(
                llm, workspace_dir=str(c.path / "engine"), provider=self._provider,
                budget=Budget(samples=c.evolve_samples, minutes=c.evolve_minutes), search_config=SearchConfig(seed=c.evolve_seed),
            )  # fmt: skip
        return self._engine

    def propose_code(self, issue: HealthIssue, code: GeneratedCode, issue_key: str) -> str | None:
        component = code.target_component if code.target_component in self.runtimes else issue.affected_component
        try:
            return self.propose_upgrade(component, code.wasm_binary, code.evidence, source=code.source_code[:200_000],
                                        language=code.language.value, title=f"evolved {component}",
                                        description=code.description, issue=issue_key).id  # fmt: skip
        except Refusal as refusal:
            logger.warning("code upgrade for %s refused: %s", issue_key, refusal.message)
            return None

    # ------------------------------------------------------------------ work the components do

    def allocate(self, items: list[int], capacity: int) -> dict:
        served = self.runtimes["task_allocation"].call({"capacity": capacity, "items": items})
        self.metrics.component_calls.labels(component="task_allocation", version=served.version[:12]).inc()
        bins = len(set(served.output))
        from ..components.task_allocation import l1_bound

        return {
            "assignment": served.output, "bins": bins, "lower_bound": l1_bound(items, capacity) if items else 0,
            "excess_pct": served.objective, "version": served.version, "fuel": served.fuel, "fault": served.fault,
        }  # fmt: skip

    def component_versions(self) -> dict:
        return {
            name: {
                "active": runtime.active, "sha256": runtime.active_sha256, "versions": runtime.versions(),
                "calls": runtime.calls, "faults": runtime.faults, "fallbacks": runtime.fallbacks,
            }
            for name, runtime in self.runtimes.items()
        }  # fmt: skip


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

