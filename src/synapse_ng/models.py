"""Data shared across the parts of synapse-ng. Plain dataclasses and enums, no behaviour."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol


class CodeLanguage(str, Enum):
    """Languages a candidate may be written in (the seed's names and values)."""

    RUST = "rust"
    WAT = "wat"
    C = "c"
    ASSEMBLYSCRIPT = "assemblyscript"

    @classmethod
    def from_name(cls, name: str) -> CodeLanguage:
        try:
            return cls(name.lower())
        except ValueError:
            known = ", ".join(member.value for member in cls)
            raise ValueError(f"unknown language {name!r}; known: {known}") from None


PROVIDER_NAMES = ("local", "ollama_local", "openai_api", "anthropic_api")


@dataclass
class LLMProviderConfig:
    """Which language model writes candidates (the seed's fields, in the seed's order).

    provider_name: "local" (the embedded model, the default), "ollama_local", "openai_api" (any
    OpenAI-compatible server) or "anthropic_api". api_endpoint: base URL (None: the provider's default).
    api_key: None reads the provider's standard variable (OPENAI_API_KEY, ANTHROPIC_API_KEY).
    For "local", model_name is a GGUF path or "" for the embedded model.
    """

    provider_name: str = "local"
    model_name: str = ""
    api_endpoint: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 120
    temperature: float = 0.2

    def __post_init__(self) -> None:
        if self.provider_name not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {self.provider_name!r}; known: {', '.join(PROVIDER_NAMES)}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {self.timeout_seconds}")
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be within [0, 2], got {self.temperature}")

    def to_dict(self) -> dict:
        """For logs and stores: the key is masked, never written out."""
        data = asdict(self)
        if data["api_key"]:
            data["api_key"] = "***"
        return data


class InefficiencyType(str, Enum):
    """Kinds of chronic problem (the seed's values)."""

    PERFORMANCE = "performance"
    SCALABILITY = "scalability"
    RESOURCE_USAGE = "resource_usage"
    CONSENSUS = "consensus"
    AUCTION = "auction"
    TASK_ALLOCATION = "task_allocation"
    REPUTATION = "reputation"
    NETWORK_TOPOLOGY = "network_topology"


InefficencyType = InefficiencyType  # the seed's spelling, kept so its callers keep working


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Inefficiency:
    """A detected chronic problem, as the engine receives it (severity 0..1)."""

    type: InefficiencyType
    description: str
    severity: float
    current_metric: float
    target_metric: float
    affected_component: str
    suggested_improvement: str
    timestamp: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.severity) <= 1.0:
            raise ValueError(f"severity must be within [0, 1], got {self.severity}")


SEVERITY_LEVELS = {"low": 0.25, "medium": 0.5, "high": 0.75, "critical": 1.0}


@dataclass
class HealthIssue:
    """What the immune system reports (the seed's fields; severity is a level name)."""

    issue_type: str
    severity: str  # "low", "medium", "high", "critical"
    current_value: float
    target_value: float
    recommended_action: str
    description: str
    detected_at: str = field(default_factory=_now)
    issue_source: str = "config"  # "config", "algorithm", "network", "resource"
    affected_component: str = ""

    @property
    def severity_value(self) -> float:
        """The level as a number in [0, 1], as an Inefficiency carries it."""
        try:
            return SEVERITY_LEVELS[self.severity.lower()]
        except KeyError:
            raise ValueError(
                f"unknown severity {self.severity!r}; use one of {', '.join(SEVERITY_LEVELS)}"
            ) from None


@dataclass
class GeneratedCode:
    """A candidate the engine hands on, with what was *measured* about it.

    estimated_improvement keeps the seed's name, but here it is the improvement measured on held-out
    workloads (in percent, positive is better), or None when nothing could be measured (a component
    the engine does not know): such code is never eligible for automatic deployment.
    """

    language: CodeLanguage
    source_code: str
    description: str
    target_component: str
    estimated_improvement: float | None
    wasm_binary: bytes | None = field(default=None, repr=False)
    wasm_hash: str | None = None
    compilation_log: str | None = None
    evidence: dict | None = field(default=None, repr=False)
    measured: bool = False
    run_id: str | None = None
    # From a collaborative evolution: {"evolution": its message id, "contributors": the islands' node ids}
    collaboration: dict | None = None

    @property
    def eligible_for_deployment(self) -> bool:
        return self.measured and self.evidence is not None and (self.estimated_improvement or 0) > 0


class SignedMessage(Protocol):
    """What governance and rollouts read of a signed message (node.envelope.Envelope fits). Read-only
    properties, so that a frozen dataclass fits."""

    @property
    def author(self) -> str: ...

    @property
    def created_at(self) -> float: ...

    @property
    def body(self) -> dict: ...

    @property
    def id(self) -> str: ...
