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
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass

import httpx

from ..components import CaseFailure, get_component
from ..components.raft_consensus import Tally, TallyInput, reference_tally
from ..components.task_allocation import l2_bound
from ..errors import EngineFailed, UsageError
from ..evolution.build import build_baseline
from ..governance import (
    GovernanceRules,
    ProposalError,
    decide,
    proposal_body,
    VerifyLimits,
    readable_text,
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
from .identity import Identity, verify_signature
from .membership import check_membership_change
from .metrics import NodeMetrics
from .operator import operator_token
from .peers import PeerLink
from .quotas import MessageRate
from .runtime import BASELINE, ComponentRuntime
from .state import NodeState

logger = logging.getLogger(__name__)

COMPONENTS = ("task_allocation", "raft_consensus", "gossip_protocol")
KIND_ORDER = {"proposal": 0, "vote": 1, "stage_report": 2, "rollback": 3}
TICK_S = 0.5
FETCH_RETRY_S = 3.0
COALESCE_S = 0.1
FETCH_BATCH = 500
GC_INTERVAL_S = 30.0
MAX_PEER_RESPONSE_BYTES = 16 * 1024 * 1024  # an inventory or a fetch batch from a peer; anything bigger is refused
MAX_REPORTS_PER_AUTHOR = 16  # stage reports and rollbacks per proposal
IDENTITY_PROOF = b"synapse-ng identity proof:"  # never the start of a signed message (canonical JSON starts with "{")
HEX64 = re.compile(r"[0-9a-f]{64}")


class _TooLarge(Exception):
    """A peer's response passed the bytes this node asked for."""


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
    late: bool = False  # a vote pulled after its proposal closed (counted once a majority holds it)


class Node:
    def __init__(self, config: NodeConfig, *, provider=None):
        self.config = config
        config.path.mkdir(parents=True, exist_ok=True)
        self.identity = Identity.load_or_create(config.path / "identity.key")
        self.id = self.identity.node_id
        self.operator_token = operator_token(config.path)
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
        self._verifications: dict[str, asyncio.Task] = {}
        self._verify_slots = asyncio.Semaphore(max(1, config.verify_concurrency))
        self.rate = MessageRate(config.member_messages_per_s, config.member_burst)
        self._late_holders: dict[str, set[str]] = {i: set() for i in self.state.late_votes()}  # late vote -> peers holding it
        self._collected_at = 0.0
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
        """The genesis member list (members.json): the only members besides those a membership_change
        approved by governance adds. Nothing is learned from whoever answers at a peer's address."""
        file = self.config.path / MEMBERS_FILE
        if not file.exists():
            return
        try:
            members = json.loads(file.read_text())
            if not isinstance(members, list):
                raise ValueError("not a list")
            for entry in members:
                node_id, url = entry["node_id"], entry.get("url")
                if not isinstance(node_id, str) or not HEX64.fullmatch(node_id):
                    raise ValueError(f"node_id {str(node_id)[:80]!r} is not 64 lowercase hex characters (an ed25519 public key)")
                if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
                    raise ValueError(f"url {str(url)[:80]!r} of {node_id[:16]} is not an http(s) URL")
                self.state.add_member(node_id, url.rstrip("/") if url else None)
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

    def ingest(self, envelope: Envelope, *, direct: bool = False, pulled: bool = False) -> Accepted:
        """Verify and store one message. `direct`: submitted by a client (a replay is then a 409);
        `pulled`: fetched from a peer's store by anti-entropy (a vote that arrives after its proposal
        closed is then kept as late, not refused: see `outcome`)."""
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
        late = self._check_body(envelope, pulled=pulled)
        if envelope.author != self.id:
            wait = self.rate.take(envelope.author, time.time())
            if wait is not None:
                raise Refusal(429, f"member {envelope.author[:16]} sends more than {self.config.member_messages_per_s:g} messages/s "
                                   f"(burst {self.config.member_burst}); try again in {wait:.1f} s")  # fmt: skip
        new = self.state.add_message(envelope)
        if new and late:
            self.state.mark_late(envelope.id)
        if new:
            self.metrics.messages.labels(kind=envelope.kind).inc()
            if envelope.kind == "proposal":
                self.metrics.proposals.labels(type=envelope.body.get("type", "?")).inc()
            if envelope.author != self.id:
                self.metrics.dissemination.observe(max(0.0, time.time() - envelope.created_at))
            self._on_new_message(envelope)
        return Accepted(envelope.id, new, new and late)

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

    def _check_body(self, envelope: Envelope, pulled: bool = False) -> bool:
        """Refuses what this node will not store; True for a vote kept as late (pulled after its close)."""
        body = envelope.body
        if envelope.created_at > time.time() + self.config.max_clock_skew_s:
            raise Refusal(422, f"{envelope.kind} created {envelope.created_at - time.time():.0f} s in the future: check the author's clock")
        try:
            if envelope.kind == "proposal":
                validate_proposal_body(body)
                if body["type"] == "config_change":
                    check_changes(body["params"]["changes"])
                elif body["type"] == "membership_change" and body["deadline"] + self.config.grace_s >= time.time():
                    check_membership_change(body["params"], self.state.members())  # (a closed one is history)
                self._check_rules(body)
                self._check_time(envelope)
                self._check_quota(envelope)
                return False
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
        if envelope.kind in ("stage_report", "rollback") and proposal.body["type"] != "code_upgrade":
            raise Refusal(422, f"{envelope.kind} for proposal {proposal.id[:16]}, which is not a code upgrade")
        mine = self.state.count(envelope.kind, proposal.id, envelope.author)
        if mine >= (self.config.max_votes_per_voter if envelope.kind == "vote" else MAX_REPORTS_PER_AUTHOR):
            raise Refusal(429, f"member {envelope.author[:16]} already sent {mine} {envelope.kind} messages for proposal {proposal.id[:16]}")
        if envelope.kind != "vote":
            return False
        if envelope.created_at > proposal.body["deadline"]:
            raise Refusal(409, f"proposal {proposal.id[:16]} closed at its deadline; the vote came after it")
        if time.time() <= proposal.body["deadline"] + self.config.grace_s:
            return False
        # The vote says it was made in time, but it reaches this node after the close: its created_at is the
        # author's word. Handed in directly or pushed, it is refused; pulled from a peer's store, it is kept
        # and counts only once a majority of the peers hold it (they received it in time, or it counts nowhere).
        if not pulled:
            raise Refusal(409, f"vote on proposal {proposal.id[:16]} arrived after the proposal closed (deadline plus "
                               f"{self.config.grace_s:g} s grace); a vote counts only if it is received in time")  # fmt: skip
        return True

    def _check_time(self, proposal: Envelope) -> None:
        """A proposal's deadline lies within the horizon of its creation (which _check_body keeps out of the future)."""
        body = proposal.body
        if body["deadline"] > proposal.created_at + self.config.max_deadline_s + self.config.max_clock_skew_s:
            raise Refusal(422, f"a proposal's deadline must lie within {self.config.max_deadline_s:g} s of its creation, "
                               f"not {body['deadline'] - proposal.created_at:.3g} s")  # fmt: skip

    def _check_quota(self, proposal: Envelope) -> None:
        """What one member can have open at once: proposals, and the WASM bytes its code upgrades bring."""
        c, now = self.config, time.time()
        if proposal.body["deadline"] + c.grace_s < now:
            return  # already closed (pulled from the past): it binds nothing and costs no more than it did
        open_ones = [p for p in self.proposals() if p.author == proposal.author and p.body["deadline"] + c.grace_s >= now]
        if len(open_ones) >= c.max_open_proposals_per_member:
            raise Refusal(429, f"member {proposal.author[:16]} already has {len(open_ones)} open proposals (at most "
                               f"{c.max_open_proposals_per_member}); wait for one to close")  # fmt: skip
        if proposal.body["type"] != "code_upgrade":
            return
        size = int(proposal.body["params"]["wasm_size"])
        if size > c.max_artifact_bytes:
            raise Refusal(413, f"the module is {size} bytes; this node takes at most {c.max_artifact_bytes}")
        held = sum(int(p.body["params"]["wasm_size"]) for p in open_ones if p.body["type"] == "code_upgrade")
        if held + size > c.max_artifact_bytes_per_member:
            raise Refusal(429, f"member {proposal.author[:16]} has {held} bytes of WASM in open proposals; with this one it "
                               f"would pass {c.max_artifact_bytes_per_member}")  # fmt: skip

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
        try:
            envelope = sign_envelope(self.identity, "proposal", body)
        except EnvelopeError as error:
            raise Refusal(422, str(error)) from None
        self._check_body(envelope)  # refused before anything is stored
        if wasm is not None:
            self.store_artifact(wasm)
        self.ingest(envelope)
        return envelope

    def propose_upgrade(self, component: str, wasm: bytes, evidence: dict, *, source: str = "", language: str = "rust",
                        title: str = "", description: str = "", issue: str = "") -> Envelope:
        """A code_upgrade from an operator or the immune system: the improvement claimed is the evidence's,
        and every honest node re-checks all of it before it votes."""
        if component not in self.runtimes:
            raise Refusal(404, f"unknown component {component!r}; known: {', '.join(self.runtimes)}")
        aggregate = evidence.get("aggregate") if isinstance(evidence, dict) else None
        claimed = aggregate.get("improvement_pct") if isinstance(aggregate, dict) else None
        if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or not -1e6 < claimed < 1e6:
            raise Refusal(422, "evidence has no aggregate improvement_pct: pass the JSON `synapse-ng evaluate --evidence-out` writes")
        params = {
            "component": component, "wasm_sha256": hashlib.sha256(wasm).hexdigest(), "wasm_size": len(wasm),
            "language": language, "source": source, "evidence": evidence,
            "improvement_pct": float(claimed), "issue": issue or f"{component}:operator",
        }  # fmt: skip
        return self.create_proposal("code_upgrade", title or f"upgrade {component}", description, params, wasm=wasm)

    def cast_vote(self, proposal_id: str, choice: str, reason: str = "") -> Envelope:
        proposal = self.state.message(proposal_id)
        if proposal is None or proposal.kind != "proposal":
            raise Refusal(404, f"unknown proposal {proposal_id[:16]}")
        if time.time() > proposal.body["deadline"]:
            raise Refusal(409, f"proposal {proposal_id[:16]} is closed (its deadline has passed)")
        if proposal.body["type"] == "code_upgrade" and choice == "yes":
            # A node's yes on a code upgrade is its verification: no request can make it vouch for a module it
            # refused or has not checked. Its operator may still vote no or abstain at any time.
            verdict = self.state.get(f"verdict:{proposal_id}")
            if not verdict or not verdict.get("ok"):
                why = "; ".join(verdict["reasons"])[:300] if verdict else "it has not verified it yet"
                raise Refusal(409, f"this node votes yes on a code upgrade only after its own verification passed ({why}); "
                                   "you may vote no or abstain")  # fmt: skip
        try:
            body = vote_body(proposal_id, choice, time.time_ns(), readable_text(reason)[:2000])
        except (ProposalError, ValueError) as error:
            raise Refusal(422, str(error)) from None
        envelope = self.sign("vote", body)
        self._voted_on.add(proposal_id)
        self.metrics.votes.labels(choice=choice).inc()
        return envelope

    def store_artifact(self, wasm: bytes) -> str:
        """Keep a module, within the store's total bound (what no proposal or version needs is collected first)."""
        sizes = self.state.artifact_sizes()
        if sum(sizes.values()) + len(wasm) > self.config.max_artifact_store_bytes:
            self.collect_artifacts()
            sizes = self.state.artifact_sizes()
            if sum(sizes.values()) + len(wasm) > self.config.max_artifact_store_bytes:
                raise Refusal(507, f"this node's artifact store is full ({sum(sizes.values())} of "
                                   f"{self.config.max_artifact_store_bytes} bytes, all needed by open proposals or versions)")  # fmt: skip
        return self.state.put_artifact(wasm)

    def collect_artifacts(self) -> list[str]:
        """Delete the modules that neither an open proposal, an approved rollout that still stands, nor a live
        version needs (version history keeps its hashes; a reverted version's module is not kept)."""
        now, keep = time.time(), set()
        for proposal in self.proposals():
            if proposal.body["type"] != "code_upgrade":
                continue
            sha = proposal.body["params"]["wasm_sha256"]
            if now <= proposal.body["deadline"] + self.config.grace_s:
                keep.add(sha)
                continue
            outcome = self.state.get(f"outcome:{proposal.id}")
            if outcome is None or (outcome["status"] == "approved" and self._rollout_status(proposal).state != "rolled_back"):
                keep.add(sha)  # undecided yet, or its rollout stands
        for name in COMPONENTS:
            keep.update(sha for _, sha in self.state.live_versions(name))
        drop = [sha for sha in self.state.artifact_sizes() if sha not in keep]
        if drop:
            self.state.delete_artifacts(drop)
            self.metrics.artifacts_collected.inc(len(drop))
            logger.info("collected %d artifacts no proposal or version needs", len(drop))
        self._collected_at = now
        return drop

    def operator_rollback(self, component: str, reason: str) -> Envelope:
        """Roll back the newest upgrade of `component` that is rolling out or completed, on every node."""
        live = [
            self.state.message(proposal_id) for proposal_id, status in self.rollouts().items()
            if status.state != "rolled_back" and self.state.message(proposal_id).body["params"]["component"] == component
        ]  # fmt: skip
        if not live:
            raise Refusal(409, f"no upgrade of {component} is live or rolling out: nothing to roll back")
        newest = max(live, key=lambda proposal: (proposal.created_at, proposal.id))
        return self.sign("rollback", rollback_body(newest.id, readable_text(reason) or "operator rollback", False))

    # ------------------------------------------------------------------ governance

    def tally(self, tally_input: TallyInput) -> Tally:
        """The live tally, checked against the reference on every call (the same input, a few microseconds
        of Python): governance cannot be subverted through the component that counts its votes. A mismatch
        decides by the reference, is reported as a health issue, and the version is rolled back at once."""
        served = self._served("raft_consensus", self.runtimes["raft_consensus"].call(tally_input))
        reference = reference_tally(tally_input)
        if served.output == reference:
            return served.output
        self.metrics.tally_mismatches.inc()
        what = f"raft_consensus version {served.version[:12]} tallied {served.output.describe()}, the reference {reference.describe()}"
        logger.error("%s: decided by the reference; rolling the version back", what)
        self.immune.report(HealthIssue(
            issue_type="tally_mismatch", severity="critical", current_value=1.0, target_value=0.0,
            recommended_action="roll back", description=what, issue_source="algorithm", affected_component="raft_consensus",
        ))  # fmt: skip
        self.actions.append({"at": time.time(), "issue_key": "raft_consensus:tally_mismatch", "kind": "reported",
                             "proposal_id": None, "detail": what})  # fmt: skip
        self._roll_back_at_once("raft_consensus", served.version, f"live tally disagreed with the reference: {what}")
        return reference

    def _served(self, component: str, served):
        """Every production call passes here: a non-baseline version that faulted (a trap, an invalid output)
        is rolled back at once, on every node, without waiting for the end of its health window."""
        self.metrics.component_calls.labels(component=component, version=served.version[:12]).inc()
        if served.faulted and served.faulted != BASELINE:
            self._roll_back_at_once(component, served.faulted, f"a production call faulted: {served.fault}")
        return served

    def _roll_back_at_once(self, component: str, version: str, reason: str) -> None:
        proposal = self.state.message(version)
        if proposal is None or proposal.kind != "proposal" or any(
            r.author == self.id for r in self.state.messages(kind="rollback", proposal_id=version)
        ):
            return
        try:
            self.sign("rollback", rollback_body(version, readable_text(f"{component} on node {self.id[:12]}: {reason}")[:2000], True))
        except Refusal as refusal:
            logger.warning("could not roll back %s: %s", version[:12], refusal.message)
            return
        if self.runtimes[component].revert(version):  # here, now; the others on receipt of the rollback
            self.state.record_version(component, version, proposal.body["params"]["wasm_sha256"], "reverted", reason[:2000])
            self.metrics.rollbacks.inc()
            logger.warning("%s: version %s rolled back at once: %s", component, version[:12], reason)

    def outcome(self, proposal: Envelope) -> dict:
        cached = self.state.get(f"outcome:{proposal.id}")
        if cached:
            return cached
        votes = self._counted_votes(proposal)
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

    def _counted_votes(self, proposal: Envelope) -> list[Envelope]:
        """The votes this node received before the close, and the late ones a majority of members hold (this
        node and the peers whose inventories list them): what a majority saw, whoever's clock says what."""
        votes = self.state.messages(kind="vote", proposal_id=proposal.id)
        late = self.state.late_votes(proposal.id)
        if not late:
            return votes
        majority = len(self.members()) // 2 + 1
        return [v for v in votes if v.id not in late or 1 + len(self._late_holders.get(v.id, ())) >= majority]

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
        if time.time() - self._collected_at > GC_INTERVAL_S:
            self.collect_artifacts()
        for proposal in self.proposals():
            if proposal.id in self._settled:
                continue
            if time.time() <= proposal.body["deadline"] + self.config.grace_s:  # open
                if proposal.body["type"] == "code_upgrade":
                    # Fetch the WASM while the vote is open, so it spreads with the proposal (and this node can
                    # serve it on) whether or not anyone here verifies it automatically.
                    await self.fetch_artifact(proposal.body["params"]["wasm_sha256"], proposal.author, proposal.body["params"]["wasm_size"])
                if self.config.auto_vote and not self._voted(proposal.id):
                    self._auto_vote(proposal)
                continue
            status = self.outcome(proposal)["status"]
            if status == "closing":
                continue
            if status != "approved":
                self._settled.add(proposal.id)
            elif proposal.body["type"] == "config_change":
                self._apply_config(proposal)
                self._settled.add(proposal.id)
            elif proposal.body["type"] == "membership_change":
                self._apply_membership(proposal)
                self._settled.add(proposal.id)
            elif await self._drive_rollout(proposal):
                self._settled.add(proposal.id)

    def _voted(self, proposal_id: str) -> bool:
        if proposal_id not in self._voted_on and any(
            v.author == self.id for v in self.state.messages(kind="vote", proposal_id=proposal_id)
        ):
            self._voted_on.add(proposal_id)
        return proposal_id in self._voted_on

    def _auto_vote(self, proposal: Envelope) -> None:
        """Config changes of tunable keys get a yes; a code upgrade gets this node's verification, run off the
        governance loop (at most verify_concurrency at once) and voted on when it ends. A membership change
        is left to the operator: who may govern is a human's decision."""
        if proposal.body["type"] == "config_change":
            self.cast_vote(proposal.id, "yes", "a well-formed change of tunable keys")
        elif proposal.body["type"] == "code_upgrade" and proposal.id not in self._verifications:
            self._verifications[proposal.id] = asyncio.create_task(self._verify_and_vote(proposal), name=f"verify {proposal.id[:12]}")

    def verify_limits(self) -> VerifyLimits:
        c = self.config
        return VerifyLimits(time_limit_s=c.verify_time_limit_s, memory_bytes=c.verify_memory_mb * 1024 * 1024,
                            own_random_cases=c.verify_random_cases, max_random_cases=c.verify_max_random_cases)  # fmt: skip

    async def _verify_and_vote(self, proposal: Envelope) -> None:
        try:
            async with self._verify_slots:
                params = proposal.body["params"]
                wasm = await self.fetch_artifact(params["wasm_sha256"], proposal.author, params["wasm_size"])
                if wasm is None:
                    verdict = {"ok": False, "reasons": [f"artifact {params['wasm_sha256'][:16]} not found at any peer, or it does not match its hash"]}
                else:
                    result = await asyncio.to_thread(verify_code_upgrade, params, wasm, limits=self.verify_limits())
                    verdict = result.to_dict()
            self.state.set(f"verdict:{proposal.id}", verdict)
            if time.time() <= proposal.body["deadline"] and not self._voted(proposal.id):
                reason = ("verified: hash, static checks, rebuild, correctness (its own cases too), evidence reproduced, improvement"
                          if verdict["ok"] else "; ".join(verdict["reasons"]))  # fmt: skip
                self.cast_vote(proposal.id, "yes" if verdict["ok"] else "no", reason)
        except Refusal as refusal:
            logger.warning("could not vote on %s: %s", proposal.id[:12], refusal.message)
        except Exception:
            logger.exception("verification of %s failed", proposal.id[:12])
        finally:
            self._verifications.pop(proposal.id, None)

    def _apply_membership(self, proposal: Envelope) -> None:
        key = f"applied:{proposal.id}"
        if self.state.get(key):
            return
        params = proposal.body["params"]
        for entry in params.get("add", []):
            self.state.add_member(entry["node_id"], entry["url"])
            if entry["url"] != self.config.url and entry["url"] not in self.peers:
                self.peers[entry["url"]] = PeerLink(entry["url"])
        for node_id in params.get("remove", []):
            self.state.remove_member(node_id)
        self.state.set(key, time.time())
        logger.info("applied membership change %s: %s", proposal.id[:12], params)

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
        self.sign("stage_report", stage_report_body(proposal.id, stage, ok, figures, readable_text(reason)))
        if not ok:
            self.sign("rollback", rollback_body(proposal.id, readable_text(f"stage {stage} on node {self.id[:12]}: {reason}"), True))
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
            served = self._served("gossip_protocol", self.runtimes["gossip_protocol"].call(case))
            return [links[i] for i in served.output if 0 <= i < len(links)]
        except (CaseFailure, ValueError) as error:  # every version failed, or a bad peer table
            logger.warning("gossip_protocol failed (%s); pushing to every peer", error)
            return links

    async def _post(self, link: PeerLink, path: str, payload: dict) -> httpx.Response | None:
        return await self._request(link, "POST", path, json=payload)

    async def _get(self, link: PeerLink, path: str, max_bytes: int = MAX_PEER_RESPONSE_BYTES, timeout: float | None = None) -> httpx.Response | None:
        return await self._request(link, "GET", path, max_bytes=max_bytes, timeout=timeout)

    async def _request(self, link: PeerLink, method: str, path: str, *, json: dict | None = None,
                       max_bytes: int = MAX_PEER_RESPONSE_BYTES, timeout: float | None = None) -> httpx.Response | None:
        """One call to a peer, its response read as a stream and dropped once it passes `max_bytes` (a peer
        cannot make this node hold more than it asked for); None when the call failed."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout or self.config.peer_timeout_s * 2):
                async with self._client.stream(method, link.url + path, json=json) as response:
                    declared = response.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                        raise _TooLarge(f"{declared} bytes declared")
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise _TooLarge(f"more than {max_bytes} bytes sent")
                        chunks.append(chunk)
            link.record(response.status_code < 500, time.perf_counter() - started)
            return httpx.Response(response.status_code, headers=response.headers, content=b"".join(chunks))
        except _TooLarge as error:
            logger.warning("peer %s answered %s %s with %s; dropped", link.url, method, path.split("?")[0], error)
        except (httpx.HTTPError, TimeoutError):
            pass
        link.record(False, time.perf_counter() - started)
        return None

    async def anti_entropy(self) -> None:
        """Pull from every peer at once (a dead peer's time-out must not delay the live ones)."""
        await asyncio.gather(*(self._pull(link) for link in list(self.peers.values())))

    async def _check_identity(self, link: PeerLink) -> bool:
        """Whether the peer at this address holds the key of the member pinned there: it must sign a fresh
        challenge (its public /api/identity alone proves nothing). An address that answers with another key
        is refused and reported; it is asked again on the next pull, in case the member comes back."""
        pinned = next((node_id for node_id, url in self.state.members().items() if url == link.url), None)
        if pinned is None:
            link.identity = "not a member: no member is pinned at this address (members.json or a membership change)"
            return False
        challenge = secrets.token_hex(32)
        response = await self._get(link, f"/api/identity?challenge={challenge}", max_bytes=64 * 1024)
        if response is None or response.status_code != 200:
            return False
        try:
            answer = response.json()
            node_id, proof = answer.get("node_id"), answer.get("proof")
        except (ValueError, AttributeError):
            node_id = proof = None
        if node_id == pinned and verify_signature(pinned, IDENTITY_PROOF + challenge.encode(), proof or ""):
            link.node_id, link.identity = pinned, "ok"
            return True
        link.node_id = None
        what = f"answered as {str(node_id)[:16]}" if node_id != pinned else "could not prove the key"
        if link.identity is None or not link.identity.startswith("impostor"):
            self.metrics.peer_impostors.inc()
            logger.warning("peer %s %s, but member %s is pinned there: refused", link.url, what, pinned[:16])
        link.identity = f"impostor: {what}, member {pinned[:16]} is pinned at this address"
        return False

    async def _pull(self, link: PeerLink) -> None:
        """Check the peer's identity, then fetch every message it has and this node lacks."""
        if link.identity != "ok" and not await self._check_identity(link):
            return
        started = time.time()
        # Only what the peer stored since the last complete pull (its own sequence numbers): a pull costs
        # what is new, not the size of the whole history.
        response = await self._get(link, f"/api/gossip/inventory?after={link.cursor}")
        if response is None:
            link.identity = None  # unreachable: whoever answers next must prove the key again
            return
        if response.status_code != 200:
            return
        try:
            inventory = response.json()
            ids = [i for i in inventory["ids"] if isinstance(i, str) and HEX64.fullmatch(i)]
            seq = inventory["seq"]
            if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
                return
        except (ValueError, KeyError, TypeError, RecursionError):
            return
        for message_id in ids:
            if message_id in self._late_holders:
                self._late_holders[message_id].add(link.url)
        missing = [i for i in ids if not self.state.has_message(i)]
        if missing:
            fetched = await self._post(link, "/api/gossip/fetch", {"ids": missing[:FETCH_BATCH]})
            if fetched is None or fetched.status_code != 200:
                return
            try:
                messages = fetched.json()["messages"]
            except (ValueError, KeyError, TypeError, RecursionError):
                return
            results = self.ingest_batch(messages if isinstance(messages, list) else [], pulled=True)
            for result in results:
                if result.get("late"):
                    self._late_holders.setdefault(result["id"], set()).add(link.url)
            if len(missing) > FETCH_BATCH or len(messages) < min(len(missing), FETCH_BATCH) or any(
                r.get("status") in (404, 429, 503) for r in results
            ):
                return  # more to fetch, a vote whose proposal is still to come, or over a rate: pull again from here
        link.cursor = max(link.cursor, seq)
        link.synced_at = started

    def ingest_batch(self, messages: list, *, pulled: bool = False) -> list[dict]:
        """Messages from a peer, proposals first; each one accepted or refused on its own (one bad message
        never sinks the batch)."""
        parsed, results = [], []
        for raw in messages:
            try:
                parsed.append(Envelope.from_dict(raw))
            except EnvelopeError as error:
                results.append({"ok": False, "status": 422, "error": str(error)})
        for envelope in sorted(parsed, key=lambda e: (KIND_ORDER.get(e.kind, 9), e.created_at, e.id)):
            try:
                accepted = self.ingest(envelope, pulled=pulled)
                results.append({"ok": True, "id": accepted.id, "new": accepted.new, **({"late": True} if accepted.late else {})})
            except Refusal as refusal:
                results.append({"ok": False, "id": envelope.id, "status": refusal.status, "error": refusal.message})
            except Exception as error:  # this node's trouble (a bug, a locked database): the others still count
                logger.exception("message %s could not be ingested", envelope.id[:16])
                results.append({"ok": False, "id": envelope.id, "status": 503, "error": f"not stored here, try again: {type(error).__name__}"})
        return results

    async def fetch_artifact(self, sha256: str, author: str | None = None, size: int | None = None) -> bytes | None:
        """The module with this hash, from here or a peer: streamed, and dropped once it passes its declared
        size (or this node's maximum), so a peer cannot make this node read more than the proposal said."""
        wasm = self.state.artifact(sha256)
        if wasm is not None:
            return wasm
        if time.time() - self._fetch_failed.get(sha256, 0.0) < FETCH_RETRY_S:
            return None
        cap = min(int(size), self.config.max_artifact_bytes) if size is not None else self.config.max_artifact_bytes
        links = sorted((link for link in self.peers.values() if link.identity == "ok"), key=lambda link: link.node_id != author)
        for link in links:
            response = await self._get(link, f"/api/artifacts/{sha256}", max_bytes=cap, timeout=self.config.artifact_fetch_timeout_s)
            if response is None or response.status_code != 200:
                continue
            if hashlib.sha256(response.content).hexdigest() != sha256:
                logger.warning("peer %s sent an artifact that does not match %s; ignored", link.url, sha256[:16])
                continue
            try:
                self.store_artifact(response.content)
            except Refusal as refusal:
                logger.warning("artifact %s not kept: %s", sha256[:16], refusal.message)
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
            return self.create_proposal("config_change", f"config remedy for {issue_key}", readable_text(issue.description), params).id
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
                                        description=readable_text(code.description)[:10_000], issue=issue_key).id  # fmt: skip
        except Refusal as refusal:
            logger.warning("code upgrade for %s refused: %s", issue_key, refusal.message)
            return None

    # ------------------------------------------------------------------ work the components do

    def allocate(self, items: list[int], capacity: int) -> dict:
        served = self._served("task_allocation", self.runtimes["task_allocation"].call({"capacity": capacity, "items": items}))
        bins = len(set(served.output))
        return {
            "assignment": served.output, "bins": bins, "lower_bound": l2_bound(items, capacity) if items else 0,
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

