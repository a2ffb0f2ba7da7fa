"""OpenAI chat completions: POST {base}/chat/completions, for api.openai.com or any compatible server
(llama.cpp's server, vLLM, LM Studio, Ollama's /v1, ...).

Base URL: config.api_endpoint *used as given* (a trailing slash is dropped, nothing else changes):
"http://127.0.0.1:8080/v1" asks http://127.0.0.1:8080/v1/chat/completions, and
"http://127.0.0.1:8080" asks http://127.0.0.1:8080/chat/completions. Most servers want the /v1.
Default: https://api.openai.com/v1.
Key: config.api_key, else OPENAI_API_KEY; sent as "Authorization: Bearer ..." only when there is
one (local servers usually need none).
"""

from __future__ import annotations

from ..models import LLMProviderConfig
from .base import Completion, Message
from .http import HTTPProvider

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(HTTPProvider):
    name = "openai_api"
    key_env = "OPENAI_API_KEY"
    model_hint = "set model_name to a model the server serves (GET <api_endpoint>/models lists them)"
    endpoint: str  # set in __init__

    @classmethod
    def resolve_base_url(cls, config: LLMProviderConfig) -> str:
        return ((config.api_endpoint or "").strip() or DEFAULT_BASE_URL).rstrip("/")

    def __init__(self, config: LLMProviderConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.endpoint = f"{self.base_url}/chat/completions"

    async def _complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int | None
    ) -> Completion:
        body = self._chat_body(messages, temperature=temperature, max_tokens=max_tokens, seed=seed)
        body = {key: value for key, value in body.items() if value is not None}
        data = await self._post_json(self.endpoint, body, self._headers())
        choices = data.get("choices")
        choice = (
            choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        )
        message = choice.get("message") if choice else None
        if choice is None or not isinstance(message, dict):
            raise self._shape_error(self.endpoint, data, "choices[0].message")
        text = message.get("content")
        if text is None:  # a refusal or tool calls instead of text
            text = ""
        if not isinstance(text, str):
            raise self._shape_error(self.endpoint, data, "a text choices[0].message.content")
        return self._completion(
            text, data, data.get("usage"), "prompt_tokens", "completion_tokens", choice.get("finish_reason")
        )

    # -- hints ------------------------------------------------------------------------------------

    def _hint_auth(self) -> str:
        sent = "" if self._key else "no key was sent; "
        return f"{sent}check the API key: set OPENAI_API_KEY (or api_key in the config)"

    def _hint_not_found(self, detail: str) -> str:
        return (
            f"check model_name ({self.model!r}); and api_endpoint, which is used as given "
            f"(this request went to {self.endpoint}): "
            "if the server serves the API under /v1, end api_endpoint with /v1"
        )

    def _hint_connect(self) -> str:
        return (
            f"is the server at {self.base_url} running and reachable? "
            "check api_endpoint in the config (used as given)"
        )
