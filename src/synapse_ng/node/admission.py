"""Messages in: every signed message, from a peer, a client or this node itself, passes here before it is
stored. Membership, signature, replay, body, clock, rules, quotas and rate are checked in that order, and
a refusal carries the HTTP status that says why.

    admission.ingest(envelope, direct=..., pulled=...) -> Accepted   (Refusal on anything wrong)
    admission.ingest_batch(messages, pulled=...) -> [result]         one bad message never sinks the batch
    admission.sign(kind, body) -> Envelope                           this node's own message, ingested
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..collaboration.agreement import island_members
from ..collaboration.messages import (
    MAX_EVOLUTION_S,
    MAX_MIGRANTS_PER_ISLAND,
    validate_evolution_body,
    validate_migrant_body,
)
from ..errors import UsageError
from ..governance import ProposalError, validate_proposal_body, validate_vote_body
from ..languages import source_hash
from ..upgrade import validate_rollback_body, validate_stage_report_body
from .config import NodeConfig, check_changes
from .envelope import Envelope, EnvelopeError, SignatureError, sign_envelope, verify_envelope
from .identity import Identity
from .ledger import Ledger
from .membership import check_membership_change
from .metrics import NodeMetrics
from .quotas import MessageRate
from .refusal import Accepted, Refusal
from .state import NodeState

logger = logging.getLogger(__name__)

# A batch is ingested in this order: what a message refers to comes before it.
KIND_ORDER = {"evolution": 0, "proposal": 1, "vote": 2, "stage_report": 3, "rollback": 4, "migrant": 5}
MAX_REPORTS_PER_AUTHOR = 16  # stage reports and rollbacks per proposal
# One validator per kind of body: the message models of governance (proposal, vote) and upgrade (rollout).
BODY_CHECKS = {
    "proposal": validate_proposal_body,
    "vote": validate_vote_body,
    "stage_report": validate_stage_report_body,
    "rollback": validate_rollback_body,
    "evolution": validate_evolution_body,
    "migrant": validate_migrant_body,
}


class Admission:
    def __init__(
        self,
        identity: Identity,
        state: NodeState,
        config: NodeConfig,
        metrics: NodeMetrics,
        ledger: Ledger,
        on_new: Callable[[Envelope], None],
    ):
        self.identity = identity
        self.state = state
        self.config = config
        self.metrics = metrics
        self.ledger = ledger
        self.rate = MessageRate(config.member_messages_per_s, config.member_burst)
        self._on_new = on_new  # first receipt: wake the governance loop, forward the message

    def sign(self, kind: str, body: dict) -> Envelope:
        envelope = sign_envelope(self.identity, kind, body)
        self.ingest(envelope)
        return envelope

    def ingest(self, envelope: Envelope, *, direct: bool = False, pulled: bool = False) -> Accepted:
        """Verify and store one message. `direct`: submitted by a client (a replay is then a 409);
        `pulled`: fetched from a peer's store by anti-entropy (a vote that arrives after its proposal
        closed is then kept as late, not refused: see voting.Voting.outcome)."""
        if envelope.author not in self.state.members():
            raise Refusal(403, f"unknown identity {envelope.author[:16]}: not a member of this network")
        try:
            verify_envelope(envelope)
        except SignatureError as error:
            raise Refusal(401, str(error)) from None
        if self.state.has_message(envelope.id):
            if direct:
                raise Refusal(
                    409, f"message {envelope.id[:16]} was already received (a replay is never counted twice)"
                )
            return Accepted(envelope.id, False)
        late = self.check(envelope, pulled=pulled)
        if envelope.author != self.identity.node_id:
            wait = self.rate.take(envelope.author, time.time())
            if wait is not None:
                raise Refusal(
                    429,
                    f"member {envelope.author[:16]} sends more than "
                    f"{self.config.member_messages_per_s:g} messages/s "
                    f"(burst {self.config.member_burst}); try again in {wait:.1f} s",
                )
        new = self.state.add_message(envelope)
        if new and late:
            self.state.mark_late(envelope.id)
        if new:
            self.metrics.messages.labels(kind=envelope.kind).inc()
            if envelope.kind == "proposal":
                self.metrics.proposals.labels(type=envelope.body.get("type", "?")).inc()
            if envelope.author != self.identity.node_id:
                self.metrics.dissemination.observe(max(0.0, time.time() - envelope.created_at))
            self._on_new(envelope)
        return Accepted(envelope.id, new, new and late)

    def ingest_batch(self, messages: list, *, pulled: bool = False) -> list[dict]:
        """Messages from a peer, proposals first; each one accepted or refused on its own."""
        parsed, results = [], []
        for raw in messages:
            try:
                parsed.append(Envelope.from_dict(raw))
            except EnvelopeError as error:
                results.append({"ok": False, "status": 422, "error": str(error)})
        for envelope in sorted(parsed, key=lambda e: (KIND_ORDER.get(e.kind, 9), e.created_at, e.id)):
            try:
                accepted = self.ingest(envelope, pulled=pulled)
                results.append(
                    {
                        "ok": True,
                        "id": accepted.id,
                        "new": accepted.new,
                        **({"late": True} if accepted.late else {}),
                    }
                )
            except Refusal as refusal:
                results.append(
                    {"ok": False, "id": envelope.id, "status": refusal.status, "error": refusal.message}
                )
            except (
                Exception
            ) as error:  # this node's trouble (a bug, a locked database): the others still count
                logger.exception("message %s could not be ingested", envelope.id[:16])
                results.append(
                    {
                        "ok": False,
                        "id": envelope.id,
                        "status": 503,
                        "error": f"not stored here, try again: {type(error).__name__}",
                    }
                )
        return results

    def check(self, envelope: Envelope, pulled: bool = False) -> bool:
        """Refuses what this node will not store; True for a vote kept as late (pulled after its close)."""
        body = envelope.body
        if envelope.created_at > time.time() + self.config.max_clock_skew_s:
            raise Refusal(
                422,
                f"{envelope.kind} created {envelope.created_at - time.time():.0f} s in the future: "
                "check the author's clock",
            )
        try:
            BODY_CHECKS[envelope.kind](body)
            if envelope.kind == "proposal":
                if body["type"] == "config_change":
                    check_changes(body["params"]["changes"])
                elif body["type"] == "membership_change" and self.ledger.is_open(envelope, time.time()):
                    check_membership_change(body["params"], self.state.members())  # (a closed one is history)
        except (ProposalError, UsageError, ValueError) as error:
            raise Refusal(422, f"invalid {envelope.kind}: {error}") from None
        if envelope.kind == "proposal":
            self._check_rules(body)
            self._check_time(envelope)
            self._check_quota(envelope)
            if body["type"] == "code_upgrade" and "evolution" in body["params"]:
                self._check_islands_proposal(envelope)
            return False
        if envelope.kind == "evolution":
            self._check_evolution(envelope)
            return False
        if envelope.kind == "migrant":
            self._check_migrant(envelope)
            return False
        return self._check_reply(envelope, pulled)

    def _check_evolution(self, envelope: Envelope) -> None:
        """Opened by the issue's designated member, naming the islands the rank names, for a bounded time,
        one open at a time per member: what one member can make the others compute is bounded."""
        body, now = envelope.body, time.time()
        if not body["issue"].startswith(body["component"] + ":"):
            raise Refusal(422, "an evolution's issue is its component's: \"component:metric\"")
        if body["islands"][0] != envelope.author:
            raise Refusal(
                403, "an evolution is opened by its first island (the issue's designated member), not another"
            )
        span = body["ends_at"] - envelope.created_at
        if not 0 < span <= MAX_EVOLUTION_S:
            raise Refusal(
                422, f"an evolution ends within {MAX_EVOLUTION_S:g} s of its creation, not {span:.3g} s"
            )
        if now >= body["ends_at"] + self.config.island_final_wait_s:
            return  # history (pulled after its end): it binds no one to search any more
        ranked = island_members(body["issue"], self.ledger.members(), len(body["islands"]))
        if ranked != body["islands"]:
            raise Refusal(
                422,
                f"the islands of {body['issue']!r} are the first {len(ranked)} members by "
                "sha256(issue + member), not the ones named",
            )
        for other in self.state.messages(kind="evolution"):
            if other.author == envelope.author and now < other.body["ends_at"]:
                raise Refusal(
                    429,
                    f"member {envelope.author[:16]} has an evolution open until {other.body['ends_at']:.0f}",
                )

    def _check_islands_proposal(self, envelope: Envelope) -> None:
        """A code upgrade that names an evolution comes from one of its islands and credits only them: a
        stranger's proposal naming it would otherwise stop the islands from proposing their winner."""
        params = envelope.body["params"]
        islands = self._evolution_of(params["evolution"], envelope.author).body["islands"]
        strangers = [n for n in params.get("contributors") or [] if n not in islands]
        if strangers:
            raise Refusal(
                422, f"params.contributors names {strangers[0][:16]}, not an island of this evolution"
            )

    def _evolution_of(self, evolution_id: str, author: str) -> Envelope:
        """The evolution a message names, held here (404 otherwise), of which `author` is an island (403)."""
        evolution = self.state.message(evolution_id)
        if evolution is None or evolution.kind != "evolution":
            raise Refusal(
                404, f"unknown evolution {evolution_id[:16]}: this node has no such evolution (yet)"
            )
        if author not in evolution.body["islands"]:
            raise Refusal(403, f"member {author[:16]} is not an island of evolution {evolution.id[:16]}")
        return evolution

    def _check_migrant(self, envelope: Envelope) -> None:
        """From an island of a known evolution, in time, within its count, one final, its hash its own."""
        body = envelope.body
        evolution = self._evolution_of(body["evolution"], envelope.author)
        config, ends_at = self.config, evolution.body["ends_at"]
        if time.time() > ends_at + config.island_final_wait_s + config.max_clock_skew_s:
            # Over by this node's clock too: nothing can use it any more (and an evolution stored as
            # history, backdated, takes no migrants at all).
            raise Refusal(409, f"evolution {evolution.id[:16]} is over; its migrants are no longer taken")
        late = envelope.created_at - ends_at
        # The author's clock, not this node's, made created_at: it may be off by max_clock_skew_s.
        allowed = self.config.max_clock_skew_s + (self.config.island_final_wait_s if body["final"] else 0.0)
        if late > allowed:
            raise Refusal(
                409, f"evolution {evolution.id[:16]} ended {late:.0f} s before this migrant was made"
            )
        mine = self.state.authored("migrant", evolution.id, envelope.author)
        if len(mine) >= MAX_MIGRANTS_PER_ISLAND:
            raise Refusal(
                429, f"member {envelope.author[:16]} already sent {len(mine)} migrants for this evolution"
            )
        if body["final"] and any(m.body["final"] for m in mine):
            raise Refusal(409, f"member {envelope.author[:16]} already sent its final for this evolution")
        if source_hash(body["source"], evolution.body["language"]) != body["source_hash"]:
            raise Refusal(422, "the migrant's source_hash is not the hash of its source")

    def _check_reply(self, envelope: Envelope, pulled: bool) -> bool:
        """A vote, stage report or rollback: for a proposal held here, within the author's count, in time."""
        proposal = self.ledger.proposal(envelope.body["proposal_id"])
        if proposal is None:
            raise Refusal(
                404,
                f"unknown proposal {envelope.body['proposal_id'][:16]}: this node has no such proposal (yet)",
            )
        if envelope.kind in ("stage_report", "rollback") and proposal.body["type"] != "code_upgrade":
            raise Refusal(
                422, f"{envelope.kind} for proposal {proposal.id[:16]}, which is not a code upgrade"
            )
        mine = self.state.count(envelope.kind, proposal.id, envelope.author)
        if mine >= (self.config.max_votes_per_voter if envelope.kind == "vote" else MAX_REPORTS_PER_AUTHOR):
            raise Refusal(
                429,
                f"member {envelope.author[:16]} already sent {mine} {envelope.kind} messages "
                f"for proposal {proposal.id[:16]}",
            )
        if envelope.kind != "vote":
            return False
        if envelope.created_at > proposal.body["deadline"]:
            raise Refusal(409, f"proposal {proposal.id[:16]} closed at its deadline; the vote came after it")
        if self.ledger.is_open(proposal, time.time()):
            return False
        # The vote says it was made in time, but it reaches this node after the close: its created_at is the
        # author's word. Handed in directly or pushed, it is refused; pulled from a peer's store, it is kept
        # and counts only once a majority of the peers hold it (they received it in time, or it counts
        # nowhere).
        if not pulled:
            raise Refusal(
                409,
                f"vote on proposal {proposal.id[:16]} arrived after the proposal closed (deadline plus "
                f"{self.config.grace_s:g} s grace); a vote counts only if it is received in time",
            )
        return True

    def _check_time(self, proposal: Envelope) -> None:
        """A proposal's deadline lies within the horizon of its creation (which check keeps out of the
        future)."""
        body = proposal.body
        if body["deadline"] > proposal.created_at + self.config.max_deadline_s + self.config.max_clock_skew_s:
            raise Refusal(
                422,
                f"a proposal's deadline must lie within {self.config.max_deadline_s:g} s of its creation, "
                f"not {body['deadline'] - proposal.created_at:.3g} s",
            )

    def _check_quota(self, proposal: Envelope) -> None:
        """What one member can have open at once: proposals, and the WASM bytes its code upgrades bring."""
        c, now = self.config, time.time()
        if not self.ledger.is_open(proposal, now):
            return  # already closed (pulled from the past): it binds nothing and costs no more than it did
        open_ones = [
            p for p in self.ledger.proposals() if p.author == proposal.author and self.ledger.is_open(p, now)
        ]
        if len(open_ones) >= c.max_open_proposals_per_member:
            raise Refusal(
                429,
                f"member {proposal.author[:16]} already has {len(open_ones)} open proposals (at most "
                f"{c.max_open_proposals_per_member}); wait for one to close",
            )
        if proposal.body["type"] != "code_upgrade":
            return
        size = int(proposal.body["params"]["wasm_size"])
        if size > c.max_artifact_bytes:
            raise Refusal(413, f"the module is {size} bytes; this node takes at most {c.max_artifact_bytes}")
        held = sum(int(p.body["params"]["wasm_size"]) for p in open_ones if p.body["type"] == "code_upgrade")
        if held + size > c.max_artifact_bytes_per_member:
            raise Refusal(
                429,
                f"member {proposal.author[:16]} has {held} bytes of WASM in open proposals; with this one it "
                f"would pass {c.max_artifact_bytes_per_member}",
            )

    def _check_rules(self, body: dict) -> None:
        """A proposer may ask for more than this node's rules, never for less: a code upgrade with a
        1/65535 threshold or a 1 % quorum is refused, not voted on."""
        rules = self.ledger.rules
        num, den = body["threshold"]
        want_num, want_den = rules.threshold_for(body["type"])
        if num * want_den < want_num * den:
            raise Refusal(
                422,
                f"a {body['type']} needs a threshold of at least {want_num}/{want_den} here, not {num}/{den}",
            )
        if body["quorum"] < rules.quorum:
            raise Refusal(
                422,
                f"a proposal needs a quorum of at least {rules.quorum:g} of the members here, "
                f"not {body['quorum']:g}",
            )
