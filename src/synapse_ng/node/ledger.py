"""What the stored messages say, read the same way by every room: the members, the proposals (each parsed
once: a signed proposal never changes), a proposal's decided outcome, the rollouts, and the rules this
node holds proposals to. Reads only: the rooms above decide and write."""

from __future__ import annotations

from ..collaboration.outcomes import UpgradeOutcome, upgrade_outcomes
from ..governance import GovernanceRules
from ..upgrade import RolloutStatus, rollout_status
from .config import NodeConfig
from .envelope import Envelope
from .state import NodeState


class Ledger:
    def __init__(self, state: NodeState, config: NodeConfig):
        self.state = state
        self.config = config
        self._proposals: dict[str, Envelope] = {}

    @property
    def rules(self) -> GovernanceRules:
        c = self.config
        return GovernanceRules(
            quorum=c.quorum,
            config_threshold=c.config_threshold,  # GovernanceRules checks it and keeps it as a tuple
            code_threshold=c.code_threshold,
            deadline_s=c.deadline_s,
            grace_s=c.grace_s,
        )

    def members(self) -> list[str]:
        return sorted(self.state.members())

    def proposals(self) -> list[Envelope]:
        """Every proposal, oldest first."""
        ids = self.state.ids(kind="proposal")
        for proposal_id in ids:
            if proposal_id not in self._proposals:
                message = self.state.message(proposal_id)
                assert message is not None, proposal_id  # listed just above, and stored messages stay
                self._proposals[proposal_id] = message
        return [self._proposals[proposal_id] for proposal_id in ids]

    def proposal(self, proposal_id: str) -> Envelope | None:
        """The proposal with this id, or None (no message, or a message of another kind)."""
        message = self.state.message(proposal_id)
        return message if message is not None and message.kind == "proposal" else None

    def decided(self, proposal_id: str) -> dict | None:
        """The outcome recorded once the proposal was decided here (None while open or closing)."""
        return self.state.get(f"outcome:{proposal_id}")

    def is_open(self, proposal: Envelope, now: float) -> bool:
        return now <= proposal.body["deadline"] + self.config.grace_s

    def rollout_status(self, proposal: Envelope) -> RolloutStatus:
        """The rollout of an approved code upgrade, as its stage reports and rollbacks say."""
        return rollout_status(
            proposal.id,
            self.members(),
            self.state.messages(kind="stage_report", proposal_id=proposal.id),
            self.state.messages(kind="rollback", proposal_id=proposal.id),
            tuple(self.config.stage_fractions),
        )

    def outcomes(self) -> list[UpgradeOutcome]:
        """Every approved code upgrade: its claim beside its live effect, as the signed reports say."""
        statuses = self.rollouts()
        approved = [p for p in self.proposals() if p.id in statuses]
        reports = {p.id: self.state.messages(kind="stage_report", proposal_id=p.id) for p in approved}
        rollbacks = {p.id: self.state.messages(kind="rollback", proposal_id=p.id) for p in approved}
        return upgrade_outcomes(approved, reports, rollbacks, statuses)

    def rollouts(self) -> dict[str, RolloutStatus]:
        """The rollout of every approved code upgrade, by proposal id."""
        found = {}
        for proposal in self.proposals():
            if proposal.body["type"] != "code_upgrade":
                continue
            outcome = self.decided(proposal.id)
            if outcome and outcome["status"] == "approved":
                found[proposal.id] = self.rollout_status(proposal)
        return found
