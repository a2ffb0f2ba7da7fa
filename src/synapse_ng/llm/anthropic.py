"""Anthropic's Messages API: POST {base}/v1/messages.

Base URL: config.api_endpoint (a trailing slash, or a trailing /v1, is dropped: the path /v1/messages
is always added), default https://api.anthropic.com. Key: config.api_key, else ANTHROPIC_API_KEY;
without one the provider refuses to be created, before any request.
System messages go to the top-level "system" field (joined by blank lines); the conversation keeps
user and assistant turns. The protocol has no seed: `seed` is accepted and ignored.
"""

from __future__ import annotations

from ..models import LLMProviderConfig
from .base import Completion, Message
from .http import HTTPProvider

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    name = "anthropic_api"
    key_env = "ANTHROPIC_API_KEY"
    require_key = True
    model_hint = "set model_name to an Anthropic model id (for example claude-sonnet-4-5)"
    endpoint: str  # set in __init__

    @classmethod
    def resolve_base_url(cls, config: LLMProviderConfig) -> str:
        base = ((config.api_endpoint or "").strip() or DEFAULT_BASE_URL).rstrip("/")
        return base.removesuffix("/v1")

    def __init__(self, config: LLMProviderConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.endpoint = f"{self.base_url}/v1/messages"

    def _headers(self) -> dict[str, str]:
        assert self._key is not None  # require_key: __init__ refuses to start without one
        return {
            "x-api-key": self._key.reveal(),
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }

    async def _complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int | None
    ) -> Completion:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        turns = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
        if not turns:
            raise ValueError("anthropic_api needs at least one user message besides the system prompt")
        body: dict = {"model": self.model, "max_tokens": max_tokens, "messages": turns}
        if system:
            body["system"] = system
        body["temperature"] = temperature
        data = await self._post_json(self.endpoint, body, self._headers())
        content = data.get("content")
        if not isinstance(content, list):
            raise self._shape_error(self.endpoint, data, "a content list")
        text = "".join(
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
        return self._completion(
            text, data, data.get("usage"), "input_tokens", "output_tokens", data.get("stop_reason")
        )

    def _hint_not_found(self, detail: str) -> str:
        return (
            f"check model_name ({self.model!r}) against the models your key may use; "
            f"and api_endpoint ({self.base_url})"
        )
