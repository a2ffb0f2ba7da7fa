"""Plumbing shared by the HTTP providers: one httpx client each, retries, backoff, deadlines, errors.

Retries (at most `RetryPolicy.max_retries` after the first try):
    429, 500, 502, 503, 504, 529, connection errors, read/connect time-outs
    429 waits what the server asks (Retry-After: seconds, fractional seconds or an HTTP-date;
    retry-after-ms too), capped at `retry_after_cap`; the others back off exponentially with jitter.
    A 429 that says "insufficient_quota" is not retried: waiting will not refill an account.
Never retried: every other 4xx (a bad key, a missing model, a malformed request), other statuses.

Time: `config.timeout_seconds` bounds the whole call, retries and back-off included, with an asyncio
deadline that really cancels the request in flight; no single attempt is given more than the time
left (nor more than `RetryPolicy.attempt_timeout`, when set). A server that never answers ends at the
deadline with LLMError(retryable=True).

Every error is an LLMError saying which provider, which URL and what to do next. The API key is kept
in a `Secret` (its repr is masked), is sent only in per-request headers (never stored on the client),
and is replaced by *** in any text taken from a server before it goes into a message or a log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from ..models import LLMProviderConfig
from ..settings import settings
from .base import BaseProvider, CallHook, Completion, LLMError, Message

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. The defaults suit real servers; tests shrink the delays.

    max_retries: tries after the first. base_delay: the first back-off, doubled each time up to
    max_delay, with `jitter` (a fraction of the delay) taken off at random so clients spread out.
    retry_after_cap: the longest wait a server's Retry-After can impose. attempt_timeout: a bound on
    one attempt (None: the time left of timeout_seconds), so a stalled attempt can be retried.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    retry_after_cap: float = 30.0
    attempt_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("base_delay", "max_delay", "retry_after_cap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise ValueError(f"attempt_timeout must be positive, got {self.attempt_timeout}")

    def backoff(self, attempt: int, rand: float | None = None) -> float:
        """The wait before retry number `attempt` (1 for the first retry)."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * (1 - self.jitter * (random.random() if rand is None else rand))


def parse_retry_after(headers: httpx.Headers | dict, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait, or None. Reads retry-after-ms, then Retry-After
    (delay-seconds, fractional seconds accepted, or an HTTP-date)."""
    headers = httpx.Headers(headers)
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = now or datetime.now(UTC)
        return max(0.0, (when - now).total_seconds())
    return value if math.isfinite(value) and value >= 0 else None


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Secret:
    """An API key that does not show itself in reprs, logs or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def resolve_key(config: LLMProviderConfig, env_var: str | None) -> Secret | None:
    """The config's api_key, else the provider's standard variable; None when neither is set."""
    value = config.api_key or (settings().api_key(env_var) if env_var else None)
    value = (value or "").strip()
    return Secret(value) if value else None


class HTTPProvider(BaseProvider):
    """A provider that speaks JSON over HTTP. Subclasses set `name`, `key_env`, `model_hint` and
    implement `resolve_base_url()` and `_complete()`; the hint methods tailor the error messages."""

    key_env: ClassVar[str | None] = None
    require_key: ClassVar[bool] = False
    model_hint: ClassVar[str] = "set model_name to a model the server serves"

    def __init__(
        self,
        config: LLMProviderConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        on_call: CallHook | None = None,
    ):
        super().__init__(config, on_call=on_call)
        if not self.model:
            raise LLMError(f"{self.name}: no model_name in the config; {self.model_hint}", provider=self.name)
        self.base_url = self.resolve_base_url(config)
        self.timeout = float(config.timeout_seconds)
        self.retry = retry or RetryPolicy()
        self._key = resolve_key(config, self.key_env)
        if self._key is None and self.require_key:
            raise LLMError(f"{self.name}: no API key; {self._hint_auth()}", provider=self.name)
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.timeout),
            # Proxy variables must not divert a loopback server (Ollama, a local OpenAI-compatible one).
            trust_env=not is_loopback(self.base_url),
            follow_redirects=False,
            headers={"user-agent": "synapse-ng"},
        )

    @classmethod
    def resolve_base_url(cls, config: LLMProviderConfig) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} model={self.model!r} at {self.base_url}>"

    # -- hints: what to do next -------------------------------------------------------------------

    def _hint_auth(self) -> str:
        where = (
            f"set {self.key_env} (or api_key in the config)" if self.key_env else "set api_key in the config"
        )
        return f"check the API key: {where}"

    def _hint_connect(self) -> str:
        return f"is the server at {self.base_url} running and reachable? check api_endpoint in the config"

    def _hint_timeout(self) -> str:
        return (
            "the server may be overloaded or the model slow: "
            "raise timeout_seconds in the config, or lower max_tokens"
        )

    def _hint_not_found(self, detail: str) -> str:
        return f"check model_name ({self.model!r}) and api_endpoint ({self.base_url})"

    def _hint_status(self, status: int, detail: str) -> str:
        if status in (401, 403):
            return self._hint_auth()
        if status == 404:
            return self._hint_not_found(detail)
        if status == 413:
            return "the request is too large for this server: shorten the prompt or lower max_tokens"
        if status == 429:
            if "insufficient_quota" in detail or "quota" in detail.lower():
                return "the account is out of quota: check its plan and billing; waiting will not help"
            return "rate limited: wait and try again later, or lower the request rate"
        if status == 529:
            return "the API is overloaded: try again later"
        if 500 <= status < 600:
            return "the server failed: try again later; if it persists, check the server's logs"
        if 300 <= status < 400:
            return (
                f"the server redirects: check api_endpoint ({self.base_url}), "
                "its scheme (http/https) and path"
            )
        return "the server rejected the request: see its message"

    # -- the request loop -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        """A bearer key when there is one (OpenAI-compatible servers, an Ollama behind a proxy)."""
        return {"authorization": f"Bearer {self._key.reveal()}"} if self._key else {}

    def _completion(
        self, text: str, data: dict, usage: Any, tokens_in: str, tokens_out: str, finish_reason: Any
    ) -> Completion:
        """The answer as a Completion: `usage` is the API's usage object, `tokens_in`/`tokens_out` name
        its fields (0 when a server reports no usage). complete() fills in the latency."""
        if not isinstance(usage, dict):
            usage = {}
        return Completion(
            text=text,
            provider=self.name,
            model=str(data.get("model") or self.model),
            tokens_in=as_int(usage.get(tokens_in)),
            tokens_out=as_int(usage.get(tokens_out)),
            latency_s=0.0,
            finish_reason=finish_reason,
            raw_usage=dict(usage),
        )

    def _chat_body(self, messages: list[Message], **fields: Any) -> dict:
        """What every chat API here takes: the model and the messages, then the API's own fields."""
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **fields,
        }

    def _redact(self, text: str) -> str:
        if self._key is not None:
            text = text.replace(self._key.reveal(), "***")
        return text

    def _error(
        self,
        what: str,
        url: str | None,
        *,
        status: int | None = None,
        retryable: bool = False,
        todo: str = "",
    ) -> LLMError:
        where = f" (POST {url})" if url and url not in what else ""
        message = f"{self.name}: {what}{where}" + (f"; {todo}" if todo else "")
        return LLMError(
            self._redact(message), provider=self.name, url=url, status=status, retryable=retryable
        )

    async def _post_json(self, url: str, body: dict, headers: dict[str, str] | None = None) -> dict:
        """POST `body` as JSON, retrying what is worth retrying, and return the JSON object answered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        state = _Attempts()
        try:
            async with asyncio.timeout_at(deadline):
                return await self._attempt_until_done(url, body, headers or {}, deadline, state)
        except TimeoutError:
            raise self._timeout_error(url, state) from None

    async def _attempt_until_done(
        self, url: str, body: dict, headers: dict[str, str], deadline: float, state: _Attempts
    ) -> dict:
        loop = asyncio.get_running_loop()
        policy = self.retry
        while True:
            state.count += 1
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            per_attempt = left if policy.attempt_timeout is None else min(policy.attempt_timeout, left)
            response: httpx.Response | None = None
            try:
                response = await self._client.post(
                    url, json=body, headers=headers, timeout=httpx.Timeout(per_attempt)
                )
            except (
                httpx.UnsupportedProtocol,
                httpx.LocalProtocolError,
                httpx.InvalidURL,
            ) as exc:  # asking again cannot help
                raise self._error(
                    f"cannot send the request: {exc}",
                    url,
                    todo=f"check api_endpoint ({self.base_url}): a URL such as http://host:port",
                ) from None
            except httpx.TimeoutException as exc:
                state.last, state.kind = (
                    f"no answer within {per_attempt:.3g} s ({type(exc).__name__})",
                    "timeout",
                )
            except httpx.TransportError as exc:
                state.last = _describe(exc)
                state.kind = "connect" if isinstance(exc, httpx.ConnectError) else "transport"
            else:
                if response.is_success:
                    return self._decode(response, url)
                detail = self._error_detail(response)
                if response.status_code not in RETRY_STATUSES or "insufficient_quota" in detail:
                    raise self._status_error(response, url, detail, attempts=state.count)
                state.last, state.kind, state.status = (
                    _status_text(response, detail),
                    "status",
                    response.status_code,
                )
                state.detail = detail

            if state.count > policy.max_retries:
                raise self._gave_up(url, state, why=f"gave up after {state.count} attempts")
            waited = parse_retry_after(response.headers) if response is not None else None
            delay = min(waited, policy.retry_after_cap) if waited is not None else policy.backoff(state.count)
            if loop.time() + delay >= deadline:
                if state.kind == "timeout":
                    raise TimeoutError
                raise self._gave_up(
                    url,
                    state,
                    why=f"the next try (in {delay:.3g} s) would pass timeout_seconds ({self.timeout:g} s)",
                )
            logger.info(
                "%s: %s from POST %s; retry %d of %d in %.2f s",
                self.name,
                self._redact(state.last),
                url,
                state.count,
                policy.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def _decode(self, response: httpx.Response, url: str) -> dict:
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            raise self._error(
                f"the server at {url} answered with something that is not JSON: {self._snippet(response)!r}",
                url,
                status=response.status_code,
                todo=f"is api_endpoint ({self.base_url}) the right kind of server for {self.name}?",
            ) from None
        if not isinstance(data, dict):
            raise self._shape_error(url, data, "a JSON object")
        if "error" in data and set(data) <= {"error", "type"}:  # an error with a 2xx status
            raise self._error(
                f"the server answered an error: {self._detail_from(data)}", url, status=response.status_code
            )
        return data

    def _shape_error(self, url: str, data: Any, expected: str) -> LLMError:
        return self._error(
            f"the server at {url} answered JSON without {expected}: {self._redact(repr(data))[:200]}",
            url,
            todo=f"is api_endpoint ({self.base_url}) the right kind of server for {self.name}?",
        )

    def _error_detail(self, response: httpx.Response) -> str:
        """The server's own words about an error: error.message (OpenAI, Anthropic), error (Ollama)."""
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            return self._snippet(response)
        return self._detail_from(data)

    def _detail_from(self, data: Any) -> str:
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict):
                kind = error.get("type") or error.get("code")
                message = error.get("message")
                return self._redact(": ".join(str(part) for part in (kind, message) if part))[:500]
            if isinstance(error, str):
                return self._redact(error)[:500]
        return self._redact(repr(data))[:200]

    def _snippet(self, response: httpx.Response, limit: int = 200) -> str:
        """The start of a body, for a message (the key is masked before the cut, so no part of it shows)."""
        try:
            text = response.text
        except (LookupError, UnicodeDecodeError):  # an unknown charset, undecodable bytes: show the bytes
            text = repr(response.content)
        return self._redact(text)[:limit]

    def _status_error(
        self, response: httpx.Response, url: str, detail: str, *, attempts: int = 1
    ) -> LLMError:
        status = response.status_code
        after = f" (after {attempts} attempts)" if attempts > 1 else ""
        return self._error(
            f"{_status_text(response, detail)}{after}",
            url,
            status=status,
            retryable=status in RETRY_STATUSES,
            todo=self._hint_status(status, detail),
        )

    def _gave_up(self, url: str, state: _Attempts, *, why: str) -> LLMError:
        if state.kind == "timeout":
            return self._timeout_error(url, state)
        if state.kind == "status":
            todo = self._hint_status(state.status or 0, state.detail)
        else:
            todo = self._hint_connect()
        return self._error(
            f"{state.last}; {why}",
            url,
            status=state.status if state.kind == "status" else None,
            retryable=True,
            todo=todo,
        )

    def _timeout_error(self, url: str, state: _Attempts) -> LLMError:
        tries = f" ({state.count} attempts; last: {state.last})" if state.count > 1 and state.last else ""
        return self._error(
            f"no answer within timeout_seconds ({self.timeout:g} s){tries}",
            url,
            retryable=True,
            todo=self._hint_timeout(),
        )


def as_int(value: Any) -> int:
    """A token count from a server's JSON; 0 when it is missing or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class _Attempts:
    count: int = 0
    last: str = ""
    kind: str = ""
    status: int | None = None
    detail: str = ""


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    kind = "cannot connect" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
    return f"{kind}: {text}" if text else kind


def _status_text(response: httpx.Response, detail: str) -> str:
    phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
    return f"HTTP {response.status_code}{phrase}" + (f": {detail}" if detail else "")
