"""What every provider shares: messages in, a completion out, running usage, one error type.

    Message(role, content)           role is "system", "user" or "assistant"
    Completion(text, provider, model, tokens_in, tokens_out, latency_s, finish_reason, raw_usage)
    Usage(calls, tokens_in, tokens_out, latency_s)      running totals, read as provider.usage
    BaseProvider (alias Provider)    what the engine programs against; every provider inherits its bookkeeping
    LLMError(SynapseError)           .provider, .url, .status (int | None), .retryable (bool)

A provider implements `_complete()`; `BaseProvider.complete()` resolves the temperature, times the
call, refuses an empty answer, adds to `usage` and calls the `on_call` hook (the registry's hook
writes one log line per call).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import SynapseError
from ..models import LLMProviderConfig

ROLES = ("system", "user", "assistant")


class LLMError(SynapseError):
    """A language model could not be asked or did not answer usefully.

    provider: the provider's name ("openai_api", ...); url: the URL asked (None before any request);
    status: the HTTP status when there was one; retryable: whether asking again later may succeed.
    The message says which provider, which URL and what to do; it never contains an API key.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        url: str | None = None,
        status: int | None = None,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.provider = provider
        self.url = url
        self.status = status
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"LLMError({str(self)!r}, provider={self.provider!r}, url={self.url!r}, "
            f"status={self.status!r}, retryable={self.retryable!r})"
        )


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown message role {self.role!r}; known: {', '.join(ROLES)}")
        if not isinstance(self.content, str):
            raise TypeError(f"message content must be a str, got {type(self.content).__name__}")


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    finish_reason: str | None
    raw_usage: dict = field(default_factory=dict)


@dataclass
class Usage:
    """Running totals over a provider's successful calls (failed calls cost no tokens and are not counted)."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def add(self, completion: Completion) -> None:
        self.calls += 1
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.latency_s += completion.latency_s


# Called after every successful call with (provider, prompt characters, completion).
CallHook = Callable[["BaseProvider", int, Completion], None]


class BaseProvider:
    """Shared bookkeeping. Subclasses set `name` and implement `_complete()`.

    temperature=None means the config's temperature; seed=None means the server's choice (a provider
    whose protocol has no seed ignores it). Every successful call adds to `self.usage`.
    """

    name: ClassVar[str] = ""
    endpoint: str | None = None  # where complete() asks (a URL, or a file for an embedded model)

    def __init__(self, config: LLMProviderConfig, *, on_call: CallHook | None = None):
        self.config = config
        self.model = config.model_name
        self.usage = Usage()
        self._on_call = on_call

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 1024,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> Completion:
        messages = check_messages(messages)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        started = time.monotonic()
        completion = await self._complete(
            messages, max_tokens=max_tokens, temperature=self._temperature(temperature), seed=seed
        )
        return self._finish(completion, sum(len(m.content) for m in messages), started)

    async def _complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int | None
    ) -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections (or a loaded model). Safe to call twice."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    def _temperature(self, temperature: float | None) -> float:
        return self.config.temperature if temperature is None else temperature

    def _finish(
        self, completion: Completion, prompt_chars: int, started: float, url: str | None = None
    ) -> Completion:
        """Stamp the latency, refuse an empty answer, count usage and report the call."""
        completion = dataclasses.replace(completion, latency_s=time.monotonic() - started)
        url = url or self.endpoint
        if not completion.text.strip():
            hint = (
                "the answer was cut off at max_tokens before any text: raise max_tokens"
                if completion.finish_reason in ("length", "max_tokens")
                else "ask again, or try another model"
            )
            raise LLMError(
                f"{self.name}: empty completion from model {self.model!r}"
                + (f" at {url}" if url else "")
                + f" (finish_reason={completion.finish_reason!r}, {completion.tokens_out} tokens out); "
                f"{hint}",
                provider=self.name,
                url=url,
                status=None,
                retryable=False,
            )
        self.usage.add(completion)
        if self._on_call is not None:
            self._on_call(self, prompt_chars, completion)
        return completion

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} model={self.model!r}>"


# The type the engine programs against: every provider (HTTP or embedded) is a BaseProvider.
Provider = BaseProvider


def check_messages(messages: list[Message]) -> list[Message]:
    messages = list(messages)
    if not messages:
        raise ValueError("messages must not be empty")
    for message in messages:
        if not isinstance(message, Message):
            raise TypeError(f"messages must be Message objects, got {type(message).__name__}")
    return messages
