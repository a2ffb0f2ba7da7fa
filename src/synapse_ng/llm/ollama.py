"""Ollama's native API: POST /api/chat (complete) and POST /api/generate (generate), never streamed.

Base URL: config.api_endpoint, else the OLLAMA_HOST variable, else http://127.0.0.1:11434.
Either may be written as Ollama accepts OLLAMA_HOST: "host", "host:port", ":port", "0.0.0.0:11434"
or a full URL. Without a scheme, http and port 11434 are assumed; a bind-all address (0.0.0.0, ::)
is where a server listens, not where to connect, so it becomes 127.0.0.1.
Ollama needs no key; if api_key is set in the config it is sent as a Bearer token (for a proxy).
"""

from __future__ import annotations

import time

from ..models import LLMProviderConfig
from ..settings import settings
from .base import Completion, Message
from .http import HTTPProvider

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = "11434"
_BIND_ALL = {"", "0.0.0.0", "::", "0:0:0:0:0:0:0:0"}
_USAGE_FIELDS = (
    "prompt_eval_count",
    "eval_count",
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
)


def ollama_host(value: str | None) -> str:
    """A connectable base URL from an OLLAMA_HOST-style value (see the module's docstring)."""
    text = (value or "").strip().strip("\"'")
    if not text:
        return DEFAULT_HOST
    scheme, sep, rest = text.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, rest = "http", text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport)
    if host.lower() in _BIND_ALL:
        host = "127.0.0.1"
    if not (port.isdigit() and 0 < int(port) <= 65535):
        port = default_port
    if ":" in host:
        host = f"[{host}]"
    base = f"{scheme}://{host}:{port}"
    return _api_base(f"{base}/{path}".rstrip("/") if path else base)


def _api_base(url: str) -> str:
    """The seed configured the full endpoint ("http://localhost:11434/api/generate"): keep the base."""
    for suffix in ("/api/generate", "/api/chat", "/api"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return hostport.strip("[]"), ""
        rest = hostport[end + 1 :]
        return hostport[1:end], rest[1:] if rest.startswith(":") else ""
    if hostport.count(":") == 1:
        host, port = hostport.split(":")
        return host, port
    return hostport, ""  # a bare name, or a bare IPv6 address


class OllamaProvider(HTTPProvider):
    name = "ollama_local"
    model_hint = (
        "set model_name to a pulled model (`ollama list` shows them; `ollama pull <model>` fetches one)"
    )
    endpoint: str  # set in __init__

    @classmethod
    def resolve_base_url(cls, config: LLMProviderConfig) -> str:
        endpoint = (config.api_endpoint or "").strip()
        if endpoint:
            return _api_base(endpoint.rstrip("/")) if "://" in endpoint else ollama_host(endpoint)
        return ollama_host(settings().ollama_host)

    def __init__(self, config: LLMProviderConfig, **kwargs):
        super().__init__(config, **kwargs)  # key_env is None: a key comes from the config only
        self.endpoint = f"{self.base_url}/api/chat"

    def _options(self, max_tokens: int, temperature: float, seed: int | None) -> dict:
        options: dict = {"temperature": temperature, "num_predict": max_tokens}
        if seed is not None:
            options["seed"] = seed
        return options

    async def _complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int | None
    ) -> Completion:
        body = self._chat_body(
            messages,
            stream=False,
            options=self._options(max_tokens, temperature, seed),
        )
        data = await self._post_json(self.endpoint, body, self._headers())
        message = data.get("message")
        text = message.get("content") if isinstance(message, dict) else None
        if not isinstance(text, str):
            raise self._shape_error(self.endpoint, data, "message.content")
        return self._answer(text, data)

    async def generate(
        self,
        prompt: str,
        system: str | None = None,
        *,
        max_tokens: int = 1024,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> Completion:
        """One prompt (and an optional system prompt) through POST /api/generate; counted like complete()."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        url = f"{self.base_url}/api/generate"
        body: dict = {"model": self.model, "prompt": prompt, "stream": False}
        if system is not None:
            body["system"] = system
        body["options"] = self._options(max_tokens, self._temperature(temperature), seed)
        started = time.monotonic()
        data = await self._post_json(url, body, self._headers())
        text = data.get("response")
        if not isinstance(text, str):
            raise self._shape_error(url, data, "response")
        return self._finish(self._answer(text, data), len(prompt) + len(system or ""), started, url)

    def _answer(self, text: str, data: dict) -> Completion:
        # Ollama's usage fields stand at the top level; prompt_eval_count is absent when the whole prompt
        # was cached.
        usage = {k: data[k] for k in _USAGE_FIELDS if k in data}
        return self._completion(text, data, usage, "prompt_eval_count", "eval_count", data.get("done_reason"))

    # -- hints ------------------------------------------------------------------------------------

    def _hint_connect(self) -> str:
        return (
            f"is `ollama serve` running on {self.base_url}? is the model pulled (`ollama pull {self.model}`)?"
        )

    def _hint_not_found(self, detail: str) -> str:
        if "model" in detail.lower():
            return f"model not found: `ollama pull {self.model}`"
        return f"no Ollama API at {self.base_url}: do api_endpoint / OLLAMA_HOST point at `ollama serve`?"

    def _hint_auth(self) -> str:
        return (
            "Ollama itself needs no key, so a proxy in front of it refused: "
            "check the API key (api_key in the config)"
        )

    def _hint_timeout(self) -> str:
        return (
            "the first call loads the model into memory and can be slow: "
            "raise timeout_seconds in the config, "
            f"or check the server with `ollama ps` (is {self.model} loaded?)"
        )
