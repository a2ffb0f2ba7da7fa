"""The immune system: measured health against targets, escalation from config to algorithm, remedies
carried out by the node through the Remedies protocol. Never imports synapse_ng.node."""

from .system import ACTION_KINDS, HISTORY_SIZE, Action, ImmuneSystem, Remedies
from .targets import (
    BOUNDS,
    DEFAULT_TARGETS,
    Target,
    TargetError,
    severity,
    targets_from_config,
)

__all__ = [
    "ACTION_KINDS",
    "BOUNDS",
    "DEFAULT_TARGETS",
    "HISTORY_SIZE",
    "Action",
    "ImmuneSystem",
    "Remedies",
    "Target",
    "TargetError",
    "severity",
    "targets_from_config",
]
