"""What each deployed upgrade claimed and what it did live, read from the signed messages alone, so every
node keeps the same history: the network learns from its outcomes.

    upgrade_outcomes(proposals, reports, rollbacks, statuses)   the approved upgrades, oldest first
    trust_penalties(outcomes) -> {node: count}       whose claims the live effect contradicted
    describe(outcome) -> str                         one line for a search's prompt

The claim is the proposal's held-out improvement (every voter re-measured it). The live effect is each
node's stage report: the rollout shadows the new and the previous version on the same recent production
inputs (node/rollouts.py) and signs both objectives. Both production objectives are lower-is-better, so
the live effect in percent is (before - after) / before * 100: positive is better, as the claim is.
Each node's first report of a stage counts, and the live effect is the median over the nodes: one member's
figures cannot swing it alone. A claim is contradicted when the upgrade was rolled back automatically (a
fault or a regression), or when its live effect is a loss; the proposer, who signed the claim, bears it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class UpgradeOutcome:
    proposal_id: str
    component: str
    author: str
    claimed_pct: float
    state: str  # the rollout's: in_progress, completed, rolled_back
    language: str
    source: str = ""
    live: list[dict] = field(default_factory=list)  # per report: node, stage, ok, before, after, effect_pct
    rollback_reason: str | None = None
    rolled_back_automatically: bool = False

    @property
    def live_effect_pct(self) -> float | None:
        """The median over the nodes that measured one: one member's figures cannot swing it alone."""
        effects = [entry["effect_pct"] for entry in self.live if entry["effect_pct"] is not None]
        return statistics.median(effects) if effects else None

    @property
    def contradicted(self) -> bool:
        effect = self.live_effect_pct
        return self.rolled_back_automatically or (self.claimed_pct > 0 and effect is not None and effect < 0)

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "source"}
        data["live_effect_pct"] = self.live_effect_pct
        data["contradicted"] = self.contradicted
        return data


def live_effect_pct(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return (before - after) / abs(before) * 100.0


def upgrade_outcomes(
    proposals, reports: dict[str, list], rollbacks: dict[str, list], statuses: dict
) -> list[UpgradeOutcome]:
    """`proposals`: the approved code upgrades (envelopes), `reports`/`rollbacks`: their stage reports and
    rollbacks by proposal id, `statuses`: their RolloutStatus by proposal id."""
    found = []
    for proposal in proposals:
        status = statuses.get(proposal.id)
        if status is None:
            continue
        params = proposal.body["params"]
        outcome = UpgradeOutcome(
            proposal.id,
            params["component"],
            proposal.author,
            float(params["improvement_pct"]),
            status.state,
            params.get("language", "rust"),
            params.get("source", ""),
            rollback_reason=status.rollback_reason,
        )
        counted: set[tuple[str, int]] = set()
        for report in reports.get(proposal.id, []):  # oldest first: a node's first report of a stage counts
            key = (report.author, report.body["stage"])
            if key in counted:
                continue
            counted.add(key)
            figures = report.body["figures"]
            before, after = figures.get("objective_before"), figures.get("objective_after")
            outcome.live.append(
                {
                    "node": report.author,
                    "stage": report.body["stage"],
                    "ok": report.body["ok"],
                    "before": before,
                    "after": after,
                    "effect_pct": live_effect_pct(before, after),
                }
            )
        if status.state == "rolled_back":
            outcome.rolled_back_automatically = any(
                r.body["automatic"] for r in rollbacks.get(proposal.id, [])
            )
        found.append(outcome)
    return found


def trust_penalties(outcomes: list[UpgradeOutcome]) -> dict[str, int]:
    """Contradicted claims per proposer (the member that signed the claim after confirming it on held-out
    work): every node derives the same counts from the same messages."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.contradicted:
            counts[outcome.author] = counts.get(outcome.author, 0) + 1
    return counts


def describe(outcome: UpgradeOutcome) -> str:
    """One line for the model: what was claimed, and what it did live."""
    effect = outcome.live_effect_pct
    live = (
        "no live measurement yet"
        if effect is None
        else f"live {effect:+.2f} % on {sum(e['effect_pct'] is not None for e in outcome.live)} nodes"
    )
    line = (
        f"upgrade {outcome.proposal_id[:8]} ({outcome.state}): "
        f"claimed {outcome.claimed_pct:+.2f} % held out, {live}"
    )
    if outcome.state == "rolled_back":  # the reason is a member's free text: it stays out of the prompt
        line += "; rolled back " + (
            "automatically" if outcome.rolled_back_automatically else "by an operator"
        )
    return line
