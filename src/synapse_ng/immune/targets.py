"""What "healthy" means for a node: one limit per measured metric, and how bad a miss is.

    Target(metric, limit, bound, component, issue_type, recommended_action, description, config_remedy=None)
    DEFAULT_TARGETS                          the five limits a node watches out of the box
    targets_from_config({metric: limit})     DEFAULT_TARGETS with some limits moved
    severity(value, target) -> "low" | "medium" | "high" | "critical"

A target names the component that is to blame when its metric goes wrong, so the immune system knows
what the engine should evolve once the problem is chronic, and (optionally) a configuration change to
try first: re-tuning a knob is cheap and reversible, rewriting an algorithm is neither. A component of
"" means "any component": such a metric (faults) is reported, never remedied automatically.

Severity is the relative size of the miss, |value - limit| / |limit|: under 10 % "low", under 25 %
"medium", under 50 % "high", otherwise "critical". For a limit of 0 any miss is critical.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

from ..errors import InvalidInput
from ..models import InefficiencyType

__all__ = ["BOUNDS", "DEFAULT_TARGETS", "Target", "TargetError", "severity", "targets_from_config"]

BOUNDS = ("max", "min")
ISSUE_TYPES = tuple(member.value for member in InefficiencyType)

# (upper edge of the relative miss, level), checked in order.
_SEVERITY_EDGES = ((0.10, "low"), (0.25, "medium"), (0.50, "high"))


class TargetError(InvalidInput):
    """A target, or an override of one, is malformed."""


def _real(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TargetError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise TargetError(f"{what} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class Target:
    """One limit. bound "max": the value must stay <= limit; bound "min": it must stay >= limit."""

    metric: str
    limit: float
    bound: str
    component: str
    issue_type: str
    recommended_action: str
    description: str
    # node config changes to propose before evolving code, e.g. {"gossip_fanout": 4}
    config_remedy: dict | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if (
            not isinstance(self.metric, str)
            or not self.metric.strip()
            or self.metric != self.metric.strip()
            or " " in self.metric
        ):
            raise TargetError(f"metric must be a non-empty name without spaces, got {self.metric!r}")
        object.__setattr__(self, "limit", _real(self.limit, f"limit of {self.metric}"))
        if self.bound not in BOUNDS:
            raise TargetError(
                f"bound of {self.metric} must be one of {', '.join(BOUNDS)}, got {self.bound!r}"
            )
        if not isinstance(self.component, str):
            raise TargetError(
                f"component of {self.metric} must be a string ('' for any), got {self.component!r}"
            )
        if self.issue_type not in ISSUE_TYPES:
            raise TargetError(
                f"issue_type of {self.metric} must be one of {', '.join(ISSUE_TYPES)}, "
                f"got {self.issue_type!r}"
            )
        for name in ("recommended_action", "description"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise TargetError(f"{name} of {self.metric} must be a non-empty string")
        if self.config_remedy is not None:
            if not isinstance(self.config_remedy, dict) or not self.config_remedy:
                raise TargetError(
                    f"config_remedy of {self.metric} must be a non-empty dict of config changes or None, "
                    f"got {self.config_remedy!r}"
                )
            if not all(isinstance(key, str) and key for key in self.config_remedy):
                raise TargetError(
                    f"config_remedy of {self.metric} must have config key names as keys, "
                    f"got {list(self.config_remedy)!r}"
                )
            if not self.component:
                raise TargetError(
                    f"{self.metric} has no component (''): it is reported only, "
                    "so it cannot carry a config_remedy"
                )
            # a private copy: a caller mutating its dict later must not change the target
            object.__setattr__(self, "config_remedy", dict(self.config_remedy))

    def violated(self, value: float) -> bool:
        """True when value is on the wrong side of the limit (the limit itself is healthy)."""
        return value > self.limit if self.bound == "max" else value < self.limit


def _default_targets() -> tuple[Target, ...]:
    """The shipped targets: data, kept in targets.json beside this module (a node's config may override
    their limits, see targets_from_config)."""
    rows = json.loads(resources.files(__package__).joinpath("targets.json").read_text(encoding="utf-8"))
    return tuple(Target(**row) for row in rows)


DEFAULT_TARGETS: tuple[Target, ...] = _default_targets()


def targets_from_config(overrides: dict[str, float]) -> tuple[Target, ...]:
    """DEFAULT_TARGETS with the limits named in overrides ({metric: limit}) replaced."""
    if not isinstance(overrides, dict):
        raise TargetError(
            f"target overrides must be a dict of metric -> limit, got {type(overrides).__name__}"
        )
    known = {target.metric: target for target in DEFAULT_TARGETS}
    unknown = sorted(str(name) for name in overrides if name not in known)
    if unknown:
        raise TargetError(
            f"unknown metric(s) {', '.join(unknown)} in target overrides; known: {', '.join(known)}"
        )
    result = []
    for target in DEFAULT_TARGETS:
        if target.metric in overrides:
            limit = _real(overrides[target.metric], f"override of {target.metric}")
            target = Target(
                metric=target.metric,
                limit=limit,
                bound=target.bound,
                component=target.component,
                issue_type=target.issue_type,
                recommended_action=target.recommended_action,
                description=target.description,
                config_remedy=target.config_remedy,
            )
        result.append(target)
    return tuple(result)


def severity(value: float, target: Target) -> str:
    """The level of a miss: relative distance r = |value - limit| / max(|limit|, 1e-9)."""
    relative = abs(float(value) - target.limit) / max(abs(target.limit), 1e-9)
    for edge, level in _SEVERITY_EDGES:
        if relative < edge:
            return level
    return "critical"
