"""Governance on a node: the proposals and votes it makes, the outcomes it decides, and what it does with
an approved proposal (apply a config or membership change, drive a rollout).

    voting.create_proposal(type, title, description, params) / voting.propose_upgrade(...)
        / voting.cast_vote(...)
    voting.outcome(proposal) -> dict   "open" | "closing" | "approved" | "rejected" | "no quorum",
                                       with the counts
    await voting.tick()                vote on open proposals, decide closed ones, apply what was approved

A yes on a code upgrade is this node's own verification (run off the loop, at most verify_concurrency at
once): no request can make it vouch for a module it refused or has not checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ..components.raft_consensus.tally import Tally, TallyInput
from ..errors import UsageError
from ..governance import (
    ProposalError,
    VerifyLimits,
    decide,
    proposal_body,
    readable_text,
    verify_code_upgrade,
    vote_body,
)
from ..json_bounds import MAX_REASON_CHARS
from .admission import Admission
from .artifacts import Artifacts
from .config import NodeConfig, check_changes
from .envelope import Envelope, EnvelopeError, sign_envelope
from .gossip import Gossip
from .ledger import Ledger
from .metrics import NodeMetrics
from .refusal import Refusal
from .rollouts import Rollouts
from .state import NodeState
from .transport import PeerTransport

logger = logging.getLogger(__name__)


class Voting:
    def __init__(
        self,
        admission: Admission,
        ledger: Ledger,
        artifacts: Artifacts,
        rollouts: Rollouts,
        gossip: Gossip,
        transport: PeerTransport,
        metrics: NodeMetrics,
        *,
        components: tuple[str, ...],
        tally: Callable[[TallyInput], Tally],
        on_config_change: Callable[[dict], None],
    ):
        self.admission = admission
        self.identity = admission.identity
        self.id = admission.identity.node_id
        self.state: NodeState = admission.state
        self.config: NodeConfig = admission.config
        self.ledger = ledger
        self.artifacts = artifacts
        self.rollouts = rollouts
        self.gossip = gossip
        self.transport = transport
        self.metrics = metrics
        self.components = components
        self._tally = tally
        self._on_config_change = on_config_change
        self._verifications: dict[str, asyncio.Task] = {}
        self._verify_slots = asyncio.Semaphore(max(1, self.config.verify_concurrency))
        self._settled: set[str] = set()  # proposals with nothing left to do here
        self._voted_on: set[str] = set()

    # ------------------------------------------------------------------ what this node proposes and votes

    def create_proposal(
        self, type: str, title: str, description: str, params: dict, wasm: bytes | None = None
    ) -> Envelope:
        try:
            body = proposal_body(type, title, description, params, rules=self.ledger.rules, now=time.time())
            if type == "config_change":
                check_changes(params.get("changes"))
            envelope = sign_envelope(self.identity, "proposal", body)
        except (ProposalError, UsageError, EnvelopeError, ValueError) as error:
            raise Refusal(422, str(error)) from None
        self.admission.check(envelope)  # refused before anything is stored
        if wasm is not None:
            self.artifacts.store(wasm)
        self.admission.ingest(envelope)
        return envelope

    def propose_upgrade(
        self,
        component: str,
        wasm: bytes,
        evidence: dict,
        *,
        source: str = "",
        language: str = "rust",
        title: str = "",
        description: str = "",
        issue: str = "",
        evolution: str = "",
        contributors: list[str] | None = None,
    ) -> Envelope:
        """A code_upgrade from an operator or the immune system: the improvement claimed is the evidence's,
        and every honest node re-checks all of it before it votes."""
        if component not in self.components:
            raise Refusal(404, f"unknown component {component!r}; known: {', '.join(self.components)}")
        aggregate = evidence.get("aggregate") if isinstance(evidence, dict) else None
        claimed = aggregate.get("improvement_pct") if isinstance(aggregate, dict) else None
        if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or not -1e6 < claimed < 1e6:
            raise Refusal(
                422,
                "evidence has no aggregate improvement_pct: "
                "pass the JSON `synapse-ng evaluate --evidence-out` writes",
            )
        params = {
            "component": component,
            "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
            "wasm_size": len(wasm),
            "language": language,
            "source": source,
            "evidence": evidence,
            "improvement_pct": float(claimed),
            "issue": issue or f"{component}:operator",
        }
        if evolution:  # found by a collaborative evolution (node/islands.py): its id and its islands
            params["evolution"] = evolution
            params["contributors"] = list(contributors or [])
        return self.create_proposal(
            "code_upgrade", title or f"upgrade {component}", description, params, wasm=wasm
        )

    def cast_vote(self, proposal_id: str, choice: str, reason: str = "") -> Envelope:
        proposal = self.ledger.proposal(proposal_id)
        if proposal is None:
            raise Refusal(404, f"unknown proposal {proposal_id[:16]}")
        if time.time() > proposal.body["deadline"]:
            raise Refusal(409, f"proposal {proposal_id[:16]} is closed (its deadline has passed)")
        if proposal.body["type"] == "code_upgrade" and choice == "yes":
            # A node's yes on a code upgrade is its verification; its operator may still vote no or abstain.
            verdict = self.state.get(f"verdict:{proposal_id}")
            if not verdict or not verdict.get("ok"):
                why = "; ".join(verdict["reasons"])[:300] if verdict else "it has not verified it yet"
                raise Refusal(
                    409,
                    f"this node votes yes on a code upgrade only after its own verification passed ({why}); "
                    "you may vote no or abstain",
                )
        try:
            body = vote_body(proposal_id, choice, time.time_ns(), readable_text(reason)[:MAX_REASON_CHARS])
        except (ProposalError, ValueError) as error:
            raise Refusal(422, str(error)) from None
        envelope = self.admission.sign("vote", body)
        self._voted_on.add(proposal_id)
        self.metrics.votes.labels(choice=choice).inc()
        return envelope

    # ------------------------------------------------------------------ outcomes

    def outcome(self, proposal: Envelope) -> dict:
        cached = self.ledger.decided(proposal.id)
        if cached:
            return cached
        votes = self._counted_votes(proposal)
        members = self.ledger.members()
        closes_at = proposal.body["deadline"] + self.config.grace_s
        if time.time() > closes_at and not self.gossip.synced_since(closes_at):
            # Past the deadline, but this node may lack votes (it was down or cut off, or a push is still in
            # flight): the decision waits until it has pulled from a majority of its peers since then.
            data = decide(proposal.body, votes, members, now=proposal.body["deadline"], grace_s=0.0).to_dict()
            data["status"] = "closing"
            return data
        result = decide(
            proposal.body, votes, members, now=time.time(), grace_s=self.config.grace_s, tally_fn=self._tally
        )
        data = result.to_dict()
        if result.status != "open":
            self.state.set(f"outcome:{proposal.id}", data)
            logger.info(
                "proposal %s (%s) decided: %s", proposal.id[:12], proposal.body["type"], result.status
            )
        return data

    def _counted_votes(self, proposal: Envelope) -> list[Envelope]:
        """The votes this node received before the close, and the late ones a majority of members hold (this
        node and the peers whose inventories list them): what a majority saw, whoever's clock says what."""
        votes = self.state.messages(kind="vote", proposal_id=proposal.id)
        late = self.state.late_votes(proposal.id)
        if not late:
            return votes
        majority = len(self.ledger.members()) // 2 + 1
        holders = self.gossip.late_holders
        return [v for v in votes if v.id not in late or 1 + len(holders.get(v.id, ())) >= majority]

    # ------------------------------------------------------------------ the governance loop

    async def tick(self) -> None:
        """Vote on open proposals, decide closed ones, apply what was approved. Proposals with nothing left
        to do (rejected, applied, rolled back) are settled and skipped from then on."""
        self.artifacts.collect_if_due()
        for proposal in self.ledger.proposals():
            if proposal.id in self._settled:
                continue
            if self.ledger.is_open(proposal, time.time()):
                if proposal.body["type"] == "code_upgrade":
                    # Fetch the WASM while the vote is open, so it spreads with the proposal (and this node
                    # can serve it on) whether or not anyone here verifies it automatically.
                    params = proposal.body["params"]
                    await self.artifacts.fetch(params["wasm_sha256"], proposal.author, params["wasm_size"])
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
            elif await self.rollouts.drive(proposal):
                self._settled.add(proposal.id)

    def _voted(self, proposal_id: str) -> bool:
        if proposal_id not in self._voted_on and any(
            v.author == self.id for v in self.state.messages(kind="vote", proposal_id=proposal_id)
        ):
            self._voted_on.add(proposal_id)
        return proposal_id in self._voted_on

    def _auto_vote(self, proposal: Envelope) -> None:
        """Config changes of tunable keys get a yes; a code upgrade gets this node's verification, run off the
        governance loop and voted on when it ends. A membership change is left to the operator: who may
        govern is a human's decision."""
        if proposal.body["type"] == "config_change":
            self.cast_vote(proposal.id, "yes", "a well-formed change of tunable keys")
        elif proposal.body["type"] == "code_upgrade" and proposal.id not in self._verifications:
            self._verifications[proposal.id] = asyncio.create_task(
                self._verify_and_vote(proposal), name=f"verify {proposal.id[:12]}"
            )

    def verify_limits(self) -> VerifyLimits:
        c = self.config
        return VerifyLimits(
            time_limit_s=c.verify_time_limit_s,
            memory_bytes=c.verify_memory_mb * 1024 * 1024,
            own_random_cases=c.verify_random_cases,
            max_random_cases=c.verify_max_random_cases,
        )

    async def _verify_and_vote(self, proposal: Envelope) -> None:
        try:
            async with self._verify_slots:
                params = proposal.body["params"]
                wasm = await self.artifacts.fetch(params["wasm_sha256"], proposal.author, params["wasm_size"])
                verdict: dict[str, Any]
                if wasm is None:
                    verdict = {
                        "ok": False,
                        "reasons": [
                            f"artifact {params['wasm_sha256'][:16]} not found at any peer, "
                            "or it does not match its hash"
                        ],
                    }
                else:
                    result = await asyncio.to_thread(
                        verify_code_upgrade, params, wasm, limits=self.verify_limits()
                    )
                    verdict = result.to_dict()
            self.state.set(f"verdict:{proposal.id}", verdict)
            if time.time() <= proposal.body["deadline"] and not self._voted(proposal.id):
                reason = (
                    "verified: hash, static checks, rebuild, correctness (its own cases too), "
                    "evidence reproduced, improvement"
                    if verdict["ok"]
                    else "; ".join(verdict["reasons"])
                )
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
            self.transport.add_peer(entry["url"])
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
        self._on_config_change(changes)
        logger.info("applied config change %s: %s", proposal.id[:12], changes)
