"""Data shared across the parts of synapse-ng. Plain dataclasses and enums, no behaviour."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class CodeLanguage(str, Enum):
    """Languages a candidate may be written in (the seed's names and values)."""

    RUST = "rust"
    WAT = "wat"
    C = "c"
    ASSEMBLYSCRIPT = "assemblyscript"

    @classmethod
    def from_name(cls, name: str) -> "CodeLanguage":
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
