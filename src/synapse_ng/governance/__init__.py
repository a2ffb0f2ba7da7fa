"""Governance: proposal and vote bodies, the tally that closes a proposal, and the checks before a vote.

proposals  build and validate the bodies of signed `proposal` and `vote` messages
tally      votes -> a raft_consensus input -> "open" | "approved" | "rejected" | "no quorum"
verify     what an honest node re-checks itself before it votes on a code upgrade
"""

from .proposals import (
    CHOICES,
    PROPOSAL_TYPES,
    GovernanceRules,
    ProposalError,
    proposal_body,
    readable_text,
    validate_code_upgrade_params,
    validate_config_change_params,
    validate_proposal_body,
    validate_vote_body,
    vote_body,
)
from .tally import Outcome, decide, quorum_count, tally_input
from .verify import Verdict, VerifyLimits, verify_code_upgrade

__all__ = [
    "CHOICES",
    "PROPOSAL_TYPES",
    "GovernanceRules",
    "Outcome",
    "ProposalError",
    "Verdict",
    "VerifyLimits",
    "decide",
    "proposal_body",
    "quorum_count",
    "readable_text",
    "tally_input",
    "validate_code_upgrade_params",
    "validate_config_change_params",
    "validate_proposal_body",
    "validate_vote_body",
    "verify_code_upgrade",
    "vote_body",
]
