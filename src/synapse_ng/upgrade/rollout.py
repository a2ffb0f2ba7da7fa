"""Staged rollout of an approved code upgrade, computed from the set of signed messages alone.

Every node holds the same set of `stage_report` and `rollback` messages (gossip converges), so every
node must derive the same rollout from them: which nodes switch in which stage, which stage is
active, whether the upgrade completed or was rolled back. Nothing here does I/O or reads a clock;
the only order used is the messages' own `(created_at, id)`, which is total and the same everywhere.

The stage plan (SPEC "Rollout rules"): members are ordered by sha256(proposal_id + member), so the
first nodes to take a risk differ from proposal to proposal but are never chosen by anyone; then the
fractions (10% -> 50% -> 100% by default) are turned into cumulative counts, each stage adding at
least one node, and stages that would add nobody are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..json_bounds import MAX_REASON_CHARS
from ..models import SignedMessage

logger = logging.getLogger(__name__)

DEFAULT_STAGES: tuple[float, ...] = (0.1, 0.5, 1.0)

IN_PROGRESS = "in_progress"
COMPLETED = "completed"
ROLLED_BACK = "rolled_back"

_HEX64 = re.compile(r"[0-9a-f]{64}")
# ceil(f * n) on floats: 0.1 * 30 is 3.0000000000000004, which must count as 3, not 4.
_CEIL_SLACK = 1e-9

_STAGE_REPORT_KEYS = frozenset({"proposal_id", "stage", "ok", "figures", "reason"})
_ROLLBACK_KEYS = frozenset({"proposal_id", "reason", "automatic"})


class RolloutError(InvalidInput):
    """A stage plan or a rollout message that cannot be right; the message says what to fix."""


# What the rollout needs of a signed envelope.
Message = SignedMessage


# ---------------------------------------------------------------------------------------- plan


def _validate_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fractions = tuple(fractions)
    if not fractions:
        raise RolloutError(
            "stage fractions are empty: give at least one, ending with 1.0, e.g. (0.1, 0.5, 1.0)"
        )
    previous = 0.0
    for index, fraction in enumerate(fractions):
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not math.isfinite(fraction)
        ):
            raise RolloutError(
                f"stage fraction #{index} is {fraction!r}: each must be a finite number in (0, 1]"
            )
        if not 0.0 < fraction <= 1.0:
            raise RolloutError(f"stage fraction #{index} is {fraction!r}: each must be in (0, 1]")
        if fraction <= previous:
            raise RolloutError(
                f"stage fractions {list(fractions)} are not strictly increasing at #{index}: "
                "each stage must cover more of the network than the one before"
            )
        previous = fraction
    if fractions[-1] != 1.0:
        raise RolloutError(
            f"stage fractions {list(fractions)} end with {fractions[-1]!r}: the last must be 1.0 (every node)"
        )
    return fractions


def _validate_members(members: Sequence[str]) -> list[str]:
    members = list(members)
    if not members:
        raise RolloutError("no members: a rollout needs at least one node")
    for member in members:
        if not isinstance(member, str) or not member:
            raise RolloutError(
                f"member {member!r} is not a node id: expected a non-empty string (hex public key)"
            )
    if len(set(members)) != len(members):
        duplicates = sorted({m for m in members if members.count(m) > 1})
        raise RolloutError(f"members listed more than once: {', '.join(duplicates)}; list each node once")
    return members


def plan_stages(
    proposal_id: str, members: Sequence[str], fractions: Sequence[float] = DEFAULT_STAGES
) -> list[list[str]]:
    """The nodes that switch in each stage; the same for any order of `members`.

    order = sorted(members, key=sha256(proposal_id + member)); c_k = min(n, max(ceil(f_k n), c_{k-1} + 1));
    stage k = order[c_{k-1}:c_k]; stages that add nobody are dropped."""
    if not isinstance(proposal_id, str) or not proposal_id:
        raise RolloutError(
            f"proposal id {proposal_id!r} is not a non-empty string: pass the proposal envelope's id"
        )
    fractions = _validate_fractions(fractions)
    members = _validate_members(members)
    n = len(members)
    # The member itself breaks (practically impossible) hash ties, so the order never depends on input order.
    order = sorted(members, key=lambda m: (hashlib.sha256((proposal_id + m).encode()).hexdigest(), m))
    stages: list[list[str]] = []
    done = 0
    for fraction in fractions:
        count = min(n, max(math.ceil(fraction * n - _CEIL_SLACK), done + 1))
        if count > done:
            stages.append(order[done:count])
            done = count
    return stages


# -------------------------------------------------------------------------------------- bodies


def _check_keys(body: Any, expected: frozenset[str], kind: str) -> None:
    if not isinstance(body, dict):
        raise RolloutError(f"{kind} body is {type(body).__name__}: expected a JSON object")
    missing = sorted(expected - body.keys())
    if missing:
        raise RolloutError(
            f"{kind} body lacks {', '.join(missing)}: expected keys {', '.join(sorted(expected))}"
        )
    unknown = sorted(str(key) for key in body.keys() - expected)
    if unknown:
        raise RolloutError(
            f"{kind} body has unknown keys {', '.join(unknown)}: expected only {', '.join(sorted(expected))}"
        )


def _check_proposal_id(value: Any, kind: str) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise RolloutError(
            f"{kind} proposal_id {value!r} is not 64 lowercase hex characters: use the proposal envelope's id"
        )


def _check_reason(value: Any, kind: str) -> None:
    if not isinstance(value, str):
        raise RolloutError(f"{kind} reason is {type(value).__name__}: expected a string")
    if len(value) > MAX_REASON_CHARS:
        raise RolloutError(
            f"{kind} reason has {len(value)} characters: shorten it to at most {MAX_REASON_CHARS}"
        )


def _check_bool(value: Any, name: str, kind: str) -> None:
    if not isinstance(value, bool):
        raise RolloutError(f"{kind} {name} is {value!r}: expected true or false")


def validate_stage_report_body(body: Any) -> None:
    """Raise RolloutError unless `body` is a well-formed stage_report body (SPEC "Message bodies")."""
    kind = "stage_report"
    _check_keys(body, _STAGE_REPORT_KEYS, kind)
    _check_proposal_id(body["proposal_id"], kind)
    stage = body["stage"]
    if isinstance(stage, bool) or not isinstance(stage, int) or stage < 0:
        raise RolloutError(
            f"{kind} stage is {stage!r}: expected an integer >= 0 (the reporting node's stage)"
        )
    _check_bool(body["ok"], "ok", kind)
    figures = body["figures"]
    if not isinstance(figures, dict):
        raise RolloutError(
            f"{kind} figures is {type(figures).__name__}: expected an object of name -> number or null"
        )
    for name, value in figures.items():
        if not isinstance(name, str):
            raise RolloutError(f"{kind} figure name {name!r} is not a string")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RolloutError(f"{kind} figure {name!r} is {value!r}: expected a finite number or null")
    _check_reason(body["reason"], kind)


def validate_rollback_body(body: Any) -> None:
    """Raise RolloutError unless `body` is a well-formed rollback body (SPEC "Message bodies")."""
    kind = "rollback"
    _check_keys(body, _ROLLBACK_KEYS, kind)
    _check_proposal_id(body["proposal_id"], kind)
    _check_reason(body["reason"], kind)
    _check_bool(body["automatic"], "automatic", kind)


def stage_report_body(proposal_id: str, stage: int, ok: bool, figures: dict, reason: str = "") -> dict:
    """The body a node signs after watching its stage's health window; validated before it leaves."""
    body = {"proposal_id": proposal_id, "stage": stage, "ok": ok, "figures": dict(figures), "reason": reason}
    validate_stage_report_body(body)
    return body


def rollback_body(proposal_id: str, reason: str, automatic: bool) -> dict:
    """The body of a rollback: `automatic` False when an operator asked for it."""
    body = {"proposal_id": proposal_id, "reason": reason, "automatic": automatic}
    validate_rollback_body(body)
    return body


# -------------------------------------------------------------------------------------- status


@dataclass
class RolloutStatus:
    proposal_id: str
    state: str  # "in_progress" | "completed" | "rolled_back"
    stages: list[list[str]]
    active_stage: int | None  # None when completed or rolled back
    reports: dict[int, dict[str, bool]] = field(default_factory=dict)  # stage -> node -> ok (counted ones)
    rollback_reason: str | None = None
    rolled_back_by: str | None = None

    def stage_of(self, node_id: str) -> int:
        for index, stage in enumerate(self.stages):
            if node_id in stage:
                return index
        raise RolloutError(
            f"node {node_id!r} is in no stage of rollout {self.proposal_id[:12]}: it is not a member"
        )

    def _stage_or_none(self, node_id: str) -> int | None:
        try:
            return self.stage_of(node_id)
        except RolloutError:
            return None

    def runs_new_version(self, node_id: str) -> bool:
        """Whether the node should run the upgraded component now (False for non-members)."""
        if self.state == ROLLED_BACK:
            return False
        stage = self._stage_or_none(node_id)
        if stage is None:
            return False
        if self.state == COMPLETED:
            return True
        return self.active_stage is not None and stage <= self.active_stage

    def needs_report(self, node_id: str) -> int | None:
        """The stage this node still owes a report for, or None."""
        if self.state != IN_PROGRESS or self.active_stage is None:
            return None
        stage = self._stage_or_none(node_id)
        if stage != self.active_stage or node_id in self.reports.get(stage, {}):
            return None
        return stage

    def to_dict(self) -> dict:
        """JSON-ready (stage numbers become string keys in `reports`)."""
        return {
            "proposal_id": self.proposal_id,
            "state": self.state,
            "stages": [list(stage) for stage in self.stages],
            "active_stage": self.active_stage,
            "reports": {str(stage): dict(nodes) for stage, nodes in sorted(self.reports.items())},
            "rollback_reason": self.rollback_reason,
            "rolled_back_by": self.rolled_back_by,
        }


def _relevant(
    messages: Iterable[Message], proposal_id: str, members: set[str], validate, kind: str
) -> list[Message]:
    """Messages for this proposal, from members, well-formed; each id once; in (created_at, id) order."""
    seen: dict[str, Message] = {}
    for message in messages:
        try:
            message_id = message.id
            created_at = message.created_at
            if message.author not in members:
                logger.debug("ignoring %s %s: author %s is not a member", kind, message_id, message.author)
                continue
            if (
                isinstance(created_at, bool)
                or not isinstance(created_at, (int, float))
                or not math.isfinite(created_at)
            ):
                logger.debug(
                    "ignoring %s %s: created_at %r is not a finite number", kind, message_id, created_at
                )
                continue
            validate(message.body)
        except (RolloutError, AttributeError) as exc:
            logger.debug("ignoring malformed %s: %s", kind, exc)
            continue
        if message.body["proposal_id"] == proposal_id:
            seen.setdefault(message_id, message)
    return sorted(seen.values(), key=lambda m: (m.created_at, m.id))


def rollout_status(
    proposal_id: str,
    members: Sequence[str],
    reports: Iterable[Message],
    rollbacks: Iterable[Message],
    fractions: Sequence[float] = DEFAULT_STAGES,
) -> RolloutStatus:
    """Where the rollout of an approved proposal stands, from its stage_report and rollback messages.

    Messages are replayed in (created_at, id) order. A report counts only if its author is a member of
    the stage it names, that stage was active when the report was made, and it is the author's first
    counted report for the stage. Stage k completes when every node of stage k has an ok report; the
    next stage then becomes active. The first counted not-ok report, or any rollback message from a
    member (even after completion), rolls the upgrade back; the earliest such message gives the reason.
    Messages for other proposals, from non-members, or malformed are ignored; replays count once."""
    stages = plan_stages(proposal_id, members, fractions)
    member_set = set(members)
    report_list = _relevant(reports, proposal_id, member_set, validate_stage_report_body, "stage_report")
    rollback_list = _relevant(rollbacks, proposal_id, member_set, validate_rollback_body, "rollback")

    events = [(m.created_at, m.id, "report", m) for m in report_list]
    events += [(m.created_at, m.id, "rollback", m) for m in rollback_list]
    events.sort(key=lambda event: (event[0], event[1]))

    status = RolloutStatus(proposal_id=proposal_id, state=IN_PROGRESS, stages=stages, active_stage=0)
    for _, _, kind, message in events:
        body = message.body
        if kind == "rollback":
            reason = body["reason"] or (
                "automatic rollback" if body["automatic"] else "rollback requested by an operator"
            )
            _roll_back(status, reason, message.author)
            break
        if status.state != IN_PROGRESS:
            continue  # completed: later reports change nothing (rollbacks still can)
        stage = body["stage"]
        if stage != status.active_stage or message.author not in stages[stage]:
            continue  # not this node's stage, or a stage not active yet (or already done)
        counted = status.reports.setdefault(stage, {})
        if message.author in counted:
            continue  # only the node's first report for its stage counts
        counted[message.author] = body["ok"]
        if not body["ok"]:
            reason = body["reason"] or f"stage {stage} report from {message.author[:12]} was not ok"
            _roll_back(status, reason, message.author)
            break
        if len(counted) == len(stages[stage]):  # all counted reports so far are ok
            if stage + 1 < len(stages):
                status.active_stage = stage + 1
            else:
                status.state, status.active_stage = COMPLETED, None
    return status


def _roll_back(status: RolloutStatus, reason: str, author: str) -> None:
    status.state = ROLLED_BACK
    status.active_stage = None
    status.rollback_reason = reason
    status.rolled_back_by = author
