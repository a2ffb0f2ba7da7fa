"""The Self-Upgrade Manager's rules: staged rollout and the health judgement that drives it.

Pure logic, no I/O: every node derives the same rollout from the same set of signed messages.
"""

from .health import DEFAULT_TOLERANCE_PCT, WindowStats, judge_window
from .rollout import (
    COMPLETED,
    DEFAULT_STAGES,
    IN_PROGRESS,
    MAX_REASON_CHARS,
    ROLLED_BACK,
    RolloutError,
    RolloutStatus,
    plan_stages,
    rollback_body,
    rollout_status,
    stage_report_body,
    validate_rollback_body,
    validate_stage_report_body,
)

__all__ = [
    "COMPLETED",
    "DEFAULT_STAGES",
    "DEFAULT_TOLERANCE_PCT",
    "IN_PROGRESS",
    "MAX_REASON_CHARS",
    "ROLLED_BACK",
    "RolloutError",
    "RolloutStatus",
    "WindowStats",
    "judge_window",
    "plan_stages",
    "rollback_body",
    "rollout_status",
    "stage_report_body",
    "validate_rollback_body",
    "validate_stage_report_body",
]
