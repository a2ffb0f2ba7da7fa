"""The HTTP providers (ollama_local, openai_api, anthropic_api) against real servers on 127.0.0.1.

The servers (tests/llm_servers.py) speak each wire protocol, check requests the way the real
servers do, and record what the client sent, so the tests assert both sides of the wire.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from llm_servers import (
    HANG,
    OK,
    AnthropicWire,
    LoopbackServer,
    Ok,
    OllamaWire,
    OpenAIWire,
    Reply,
    Wire,
    refused_url,
)
from synapse_ng.errors import SynapseError
from synapse_ng.llm import (
    LLMError,
    Message,
    Provider,
    RetryPolicy,
    Usage,
    create_provider,
    known_providers,
)
from synapse_ng.llm.http import parse_retry_after
from synapse_ng.llm.ollama import ollama_host
from synapse_ng.models import LLMProviderConfig

KEY = "sk-test-Zq7Xw3Vb9Nm2Lk5J"  # a key that must never show up in a message or a log line
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, retry_after_cap=2.0)
PROMPT = [Message("system", "You write Rust."), Message("user", "Improve the priority function.")]


@dataclass(frozen=True)
class Kind:
    """One provider, the server that plays its counterpart, and how to point the one at the other."""

    provider: str
    model: str
    path: str
    key_hint: str  # what a 401 must tell the user to check
    make_wire: Callable[..., Wire]
    endpoint: Callable[[str], str]

    def wire(self, **kwargs) -> Wire:
        return self.make_wire(**kwargs)

    def config(
        self, server_url: str, *, key: str | None = KEY, timeout: float = 5, **kwargs
    ) -> LLMProviderConfig:
        return LLMProviderConfig(
            self.provider,
            self.model,
            self.endpoint(server_url),
            api_key=key,
            timeout_seconds=timeout,
            **kwargs,
        )

    def create(self, server_url: str, *, retry: RetryPolicy = FAST, **kwargs):
        return create_provider(self.config(server_url, **kwargs), retry=retry)


OLLAMA = Kind("ollama_local", "qwen2.5-coder:1.5b", "/api/chat", "api_key", OllamaWire, lambda url: url)
OPENAI = Kind(
    "openai_api",
    "gpt-4o-mini",
    "/v1/chat/completions",
    "OPENAI_API_KEY",
    lambda **kw: OpenAIWire(**{"key": KEY, **kw}),
    lambda url: url + "/v1",
)
ANTHROPIC = Kind(
    "anthropic_api",
    "claude-sonnet-4-5",
    "/v1/messages",
    "ANTHROPIC_API_KEY",
    lambda **kw: AnthropicWire(**{"key": KEY, **kw}),
    lambda url: url,
)
KINDS = [
    pytest.param(OLLAMA, id="ollama"),
    pytest.param(OPENAI, id="openai"),
    pytest.param(ANTHROPIC, id="anthropic"),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve():
    """serve(wire, *steps) -> a running LoopbackServer, closed at teardown (hung handlers released)."""
    servers: list[LoopbackServer] = []

    def start(wire: Wire, *steps) -> LoopbackServer:
        server = LoopbackServer(wire, *steps)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


def full_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


# -- each provider speaks its own protocol -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_ollama_chat_request_and_answer(serve):
    server = serve(OllamaWire(text="fn f() {}", tokens_in=31, tokens_out=12))
    async with OLLAMA.create(server.url, key=None) as provider:
        completion = await provider.complete(PROMPT, max_tokens=64, temperature=0.5, seed=7)
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.body == {
        "model": "qwen2.5-coder:1.5b",
        "messages": [
            {"role": "system", "content": "You write Rust."},
            {"role": "user", "content": "Improve the priority function."},
        ],
        "stream": False,
        "options": {"temperature": 0.5, "num_predict": 64, "seed": 7},
    }
    assert (completion.text, completion.tokens_in, completion.tokens_out) == ("fn f() {}", 31, 12)
    assert (completion.provider, completion.model, completion.finish_reason) == (
        "ollama_local",
        "qwen2.5-coder:1.5b",
        "stop",
    )
    assert completion.raw_usage["eval_count"] == 12 and "total_duration" in completion.raw_usage
    assert completion.latency_s > 0


@pytest.mark.asyncio
async def test_ollama_generate_request_and_answer(serve):
    server = serve(OllamaWire(text="42", tokens_in=5, tokens_out=2))
    async with OLLAMA.create(server.url, key=None, temperature=0.3) as provider:
        completion = await provider.generate(
            "What is six times seven?", system="Answer with a number.", max_tokens=8
        )
        await provider.generate("Again?")
    first, second = server.requests
    assert first.path == "/api/generate"
    assert first.body == {
        "model": "qwen2.5-coder:1.5b",
        "prompt": "What is six times seven?",
        "system": "Answer with a number.",
        "stream": False,
        "options": {
            "temperature": 0.3,
            "num_predict": 8,
        },  # the config's temperature; no seed asked, none sent
    }
    assert "system" not in second.body
    assert (completion.text, completion.tokens_in, completion.tokens_out, completion.finish_reason) == (
        "42",
        5,
        2,
        "stop",
    )
    assert provider.usage.calls == 2 and provider.usage.tokens_out == 4


@pytest.mark.asyncio
async def test_ollama_missing_model_says_pull_it(serve):
    server = serve(OllamaWire(models={"llama3.2"}))
    async with OLLAMA.create(server.url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    error = caught.value
    assert (error.status, error.retryable) == (404, False)
    assert "model not found: `ollama pull qwen2.5-coder:1.5b`" in str(error)
    assert 'model "qwen2.5-coder:1.5b" not found' in str(error)  # the server's own words
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_ollama_endpoint_that_is_not_ollama(serve):
    server = serve(OllamaWire())
    config = LLMProviderConfig(
        "ollama_local", "qwen2.5-coder:1.5b", server.url + "/proxy/", timeout_seconds=5
    )
    async with create_provider(config, retry=FAST) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert server.requests[0].path == "/proxy/api/chat"
    assert "404 page not found" in str(caught.value)
    assert f"no Ollama API at {server.url}/proxy" in str(caught.value)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        (":8080", "http://127.0.0.1:8080"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:9000", "http://gpu-box:9000"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://ollama.example.com", "https://ollama.example.com:443"),
        ("https://ollama.example.com:8443/ollama/", "https://ollama.example.com:8443/ollama"),
        ("[::1]:11434", "http://[::1]:11434"),
        ("[::]:11434", "http://127.0.0.1:11434"),
        ("localhost:bad", "http://localhost:11434"),
        ('"127.0.0.1:5000"', "http://127.0.0.1:5000"),
        # The seed configured the full endpoint; the provider still needs the base.
        ("http://localhost:11434/api/generate", "http://localhost:11434"),
        ("http://localhost:11434/api/chat/", "http://localhost:11434"),
        ("https://proxy.example.com:8443/ollama/api/generate", "https://proxy.example.com:8443/ollama"),
        ("http://h:1/apis", "http://h:1/apis"),
    ],
)
def test_ollama_host_is_read_as_ollama_reads_it(value, expected):
    assert ollama_host(value) == expected


@pytest.mark.asyncio
async def test_ollama_base_url_comes_from_ollama_host(serve, monkeypatch):
    server = serve(OllamaWire())
    monkeypatch.setenv(
        "OLLAMA_HOST", "0.0.0.0:" + server.url.rsplit(":", 1)[1]
    )  # no scheme, bind-all address
    async with create_provider(
        LLMProviderConfig("ollama_local", "qwen2.5-coder:1.5b", timeout_seconds=5), retry=FAST
    ) as provider:
        assert provider.base_url == server.url
        await provider.complete(PROMPT)
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_openai_request_and_answer(serve):
    server = serve(OPENAI.wire(text="let x = 1;", tokens_in=40, tokens_out=6))
    async with OPENAI.create(server.url) as provider:
        completion = await provider.complete(PROMPT, max_tokens=128, seed=3)
        await provider.complete(PROMPT, temperature=0.0)
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["content-type"] == "application/json"
    assert first.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You write Rust."},
            {"role": "user", "content": "Improve the priority function."},
        ],
        "temperature": 0.2,
        "max_tokens": 128,
        "seed": 3,
    }
    assert (
        second.body["temperature"] == 0.0 and "seed" not in second.body and second.body["max_tokens"] == 1024
    )
    assert (completion.text, completion.tokens_in, completion.tokens_out, completion.finish_reason) == (
        "let x = 1;",
        40,
        6,
        "stop",
    )
    assert completion.raw_usage == {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46}


@pytest.mark.asyncio
async def test_openai_key_from_the_environment(serve, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = serve(OPENAI.wire())
    async with OPENAI.create(server.url, key=None) as provider:
        await provider.complete(PROMPT)
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.asyncio
async def test_openai_compatible_server_without_a_key(serve):
    server = serve(OpenAIWire(key=None))
    async with OPENAI.create(server.url, key=None) as provider:
        completion = await provider.complete(PROMPT)
    assert "authorization" not in server.requests[0].headers
    assert completion.text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "typed, prefix", [("{url}/v1/", "/v1"), ("{url}/", ""), ("{url}", ""), ("{url}/openai/v1", "/openai/v1")]
)
async def test_openai_base_url_is_used_as_given(serve, typed, prefix):
    server = serve(OpenAIWire(prefix=prefix))
    config = LLMProviderConfig("openai_api", "gpt-4o-mini", typed.format(url=server.url), timeout_seconds=5)
    async with create_provider(config, retry=FAST) as provider:
        await provider.complete(PROMPT)
    assert server.requests[0].path == f"{prefix}/chat/completions"


@pytest.mark.asyncio
async def test_openai_base_url_without_v1_is_explained(serve):
    server = serve(OpenAIWire(key=None))  # serves /v1/chat/completions
    config = LLMProviderConfig("openai_api", "gpt-4o-mini", server.url, timeout_seconds=5)
    async with create_provider(config, retry=FAST) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    message = str(caught.value)
    assert caught.value.status == 404 and len(server.requests) == 1
    assert f"{server.url}/chat/completions" in message and "end api_endpoint with /v1" in message


@pytest.mark.asyncio
@pytest.mark.parametrize("endpoint", ["localhost:8080/v1", "ftp://127.0.0.1:8080/v1"])
async def test_an_endpoint_that_is_not_an_http_url_is_not_retried(endpoint):
    config = LLMProviderConfig("openai_api", "gpt-4o-mini", endpoint, timeout_seconds=5)
    async with create_provider(config, retry=RetryPolicy(base_delay=1)) as provider:
        started = time.monotonic()
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert time.monotonic() - started < 0.5
    assert "cannot send the request" in str(caught.value) and "check api_endpoint" in str(caught.value)


@pytest.mark.asyncio
async def test_openai_out_of_quota_is_not_retried(serve):
    wire = OPENAI.wire()
    server = serve(
        wire,
        wire.error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            code="insufficient_quota",
        ),
    )
    async with OPENAI.create(server.url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert len(server.requests) == 1
    assert caught.value.status == 429 and "out of quota" in str(caught.value)


@pytest.mark.asyncio
async def test_anthropic_request_and_answer(serve):
    server = serve(ANTHROPIC.wire(text="fn main() { println!(); }", tokens_in=50, tokens_out=14))
    messages = [
        Message("system", "You write Rust."),
        Message("system", "Be brief."),
        Message("user", "Hi"),
        Message("assistant", "Hello"),
        Message("user", "Improve it."),
    ]
    async with ANTHROPIC.create(server.url) as provider:
        completion = await provider.complete(messages, max_tokens=256, seed=5)
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Improve it."},
        ],
        "system": "You write Rust.\n\nBe brief.",
        "temperature": 0.2,
    }  # no seed: the protocol has none
    assert completion.text == "fn main() { println!(); }"  # joined from two text blocks
    assert (completion.tokens_in, completion.tokens_out, completion.finish_reason) == (50, 14, "end_turn")
    assert completion.raw_usage["cache_read_input_tokens"] == 0


@pytest.mark.asyncio
async def test_anthropic_without_system_sends_no_system_and_drops_v1_from_endpoint(serve):
    server = serve(ANTHROPIC.wire())
    config = LLMProviderConfig(
        "anthropic_api", "claude-sonnet-4-5", server.url + "/v1/", api_key=KEY, timeout_seconds=5
    )
    async with create_provider(config, retry=FAST) as provider:
        await provider.complete([Message("user", "Hi")])
    assert server.requests[0].path == "/v1/messages" and "system" not in server.requests[0].body


@pytest.mark.asyncio
async def test_anthropic_without_a_key_fails_before_any_request(serve):
    server = serve(ANTHROPIC.wire())
    with pytest.raises(LLMError) as caught:
        ANTHROPIC.create(server.url, key=None)
    assert "ANTHROPIC_API_KEY" in str(caught.value) and caught.value.provider == "anthropic_api"
    assert server.requests == []


@pytest.mark.asyncio
async def test_anthropic_error_body_message_reaches_the_error(serve):
    server = serve(ANTHROPIC.wire())
    async with ANTHROPIC.create(server.url, temperature=1.5) as provider:  # Anthropic's range is 0..1
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    error = caught.value
    assert (error.status, error.retryable, len(server.requests)) == (400, False, 1)
    assert "invalid_request_error: temperature: range: 0..1" in str(error)


@pytest.mark.asyncio
async def test_anthropic_overloaded_529_is_retried(serve):
    wire = ANTHROPIC.wire()
    server = serve(wire, wire.error(529, "Overloaded", "overloaded_error"), OK)
    async with ANTHROPIC.create(server.url) as provider:
        completion = await provider.complete(PROMPT)
    assert len(server.requests) == 2 and completion.text


# -- the same failures, for every provider ----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_success_counts_tokens_and_logs_one_line(kind, serve, caplog):
    caplog.set_level(logging.INFO, logger="synapse_ng.llm")
    server = serve(kind.wire(tokens_in=17, tokens_out=5))
    calls = []
    config = kind.config(server.url)
    async with create_provider(
        config, retry=FAST, on_call=lambda p, chars, c: calls.append((chars, c))
    ) as provider:
        assert isinstance(provider, Provider)
        first = await provider.complete(PROMPT)
        second = await provider.complete([Message("user", "again")])
    assert (first.tokens_in, first.tokens_out) == (17, 5)
    usage = provider.usage
    assert isinstance(usage, Usage)
    assert (usage.calls, usage.tokens_in, usage.tokens_out, usage.tokens) == (2, 34, 10, 44)
    assert usage.latency_s == pytest.approx(first.latency_s + second.latency_s)
    assert [chars for chars, _ in calls] == [sum(len(m.content) for m in PROMPT), 5]
    lines = [r.getMessage() for r in caplog.records if r.name == "synapse_ng.llm.registry"]
    assert len(lines) == 2
    assert (
        f"provider={kind.provider} model={kind.model} prompt_chars=45 tokens_in=17 tokens_out=5 latency_s="
        in lines[0]
    )
    assert server.requests[0].path == kind.path


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_401_is_not_retried_and_names_the_key(kind, serve):
    server = serve(kind.wire(key="the-right-key"))
    async with kind.create(server.url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    error = caught.value
    assert isinstance(error, SynapseError)
    assert (error.provider, error.status, error.retryable) == (kind.provider, 401, False)
    assert error.url == server.url + kind.path
    assert "check the API key" in str(error) and kind.key_hint in str(error) and error.url in str(error)
    assert len(server.requests) == 1
    assert_no_key(full_text(error))


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_429_waits_what_retry_after_asks_then_succeeds(kind, serve):
    wire = kind.wire()
    server = serve(wire, wire.error(429, "slow down", "rate_limit_error", headers={"retry-after": "0.3"}), OK)
    async with kind.create(server.url) as provider:
        completion = await provider.complete(PROMPT)
    first, second = server.requests
    assert 0.29 <= second.at - first.at < 0.3 + 0.25
    assert completion.text and provider.usage.calls == 1


@pytest.mark.asyncio
async def test_retry_after_is_capped(serve):
    wire = OPENAI.wire()
    server = serve(wire, wire.error(429, "slow down", headers={"retry-after": "1"}), OK)
    async with OPENAI.create(server.url, retry=RetryPolicy(base_delay=0.01, retry_after_cap=0.2)) as provider:
        await provider.complete(PROMPT)
    first, second = server.requests
    assert 0.19 <= second.at - first.at < 0.2 + 0.25


@pytest.mark.asyncio
async def test_retry_after_beyond_the_deadline_gives_up_at_once(serve):
    wire = OPENAI.wire()
    server = serve(wire, wire.error(429, "slow down", headers={"retry-after": "30"}))
    started = time.monotonic()
    async with OPENAI.create(server.url, timeout=2, retry=RetryPolicy(retry_after_cap=60)) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert time.monotonic() - started < 1
    assert len(server.requests) == 1
    assert caught.value.status == 429 and caught.value.retryable
    assert "would pass timeout_seconds (2 s)" in str(caught.value) and "rate limited" in str(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_500_then_success(kind, serve):
    wire = kind.wire()
    server = serve(wire, wire.error(500, "internal error"), OK)
    async with kind.create(server.url) as provider:
        completion = await provider.complete(PROMPT)
    assert len(server.requests) == 2 and completion.text == wire.text
    assert server.requests[0].body == server.requests[1].body


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_500_forever_gives_up_after_max_retries(kind, serve):
    wire = kind.wire()
    server = serve(wire, wire.error(503, "the model is reloading"))
    async with kind.create(server.url, retry=RetryPolicy(max_retries=2, base_delay=0.01)) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    error = caught.value
    assert len(server.requests) == 3
    assert (error.status, error.retryable) == (503, True)
    assert "gave up after 3 attempts" in str(error) and "the model is reloading" in str(error)
    assert "try again later" in str(error) and error.url in str(error)
    assert provider.usage.calls == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_json_is_reported_with_the_start_of_the_body(kind, serve):
    page = "<html><body>" + "Bad gateway, says the proxy. " * 20 + "</body></html>"
    server = serve(kind.wire(), Reply(200, page, {"content-type": "text/html"}))
    async with kind.create(server.url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    message = str(caught.value)
    assert f"the server at {server.url}{kind.path} answered with something that is not JSON: " in message
    assert page[:200] in message and page[:201] not in message
    assert caught.value.retryable is False and len(server.requests) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_json_of_the_wrong_shape_is_reported(kind, serve):
    server = serve(kind.wire(), Reply(200, {"hello": "world"}))
    async with kind.create(server.url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert "answered JSON without" in str(caught.value) and "hello" in str(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_an_empty_answer_is_an_error(kind, serve):
    server = serve(kind.wire(), Ok(text="", tokens_out=0))
    async with kind.create(server.url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert "empty completion" in str(caught.value) and caught.value.url == server.url + kind.path
    assert provider.usage.calls == 0 and len(server.requests) == 1


@pytest.mark.asyncio
async def test_an_answer_cut_off_before_any_text_says_raise_max_tokens(serve):
    server = serve(OPENAI.wire(), Ok(text="", finish="length"))
    async with OPENAI.create(server.url) as provider:
        with pytest.raises(LLMError, match="raise max_tokens"):
            await provider.complete(PROMPT, max_tokens=1)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_that_never_answers_times_out(kind, serve):
    server = serve(kind.wire(), HANG)
    started = time.monotonic()
    async with kind.create(server.url, timeout=0.5) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 0.5 + 0.4
    error = caught.value
    assert (error.provider, error.url, error.status, error.retryable) == (
        kind.provider,
        server.url + kind.path,
        None,
        True,
    )
    assert "no answer within timeout_seconds (0.5 s)" in str(error) and "raise timeout_seconds" in str(error)
    assert len(server.requests) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_stalled_attempt_is_retried_within_the_deadline(kind, serve):
    server = serve(kind.wire(), HANG, OK)
    async with kind.create(
        server.url, timeout=5, retry=RetryPolicy(base_delay=0.01, attempt_timeout=0.3)
    ) as provider:
        completion = await provider.complete(PROMPT)
    assert len(server.requests) == 2 and completion.text


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused(kind):
    url = refused_url()
    started = time.monotonic()
    async with kind.create(url) as provider:
        with pytest.raises(LLMError) as caught:
            await provider.complete(PROMPT)
    assert time.monotonic() - started < 2
    error = caught.value
    message = str(error)
    assert (error.status, error.retryable, error.url) == (None, True, url + kind.path)
    assert "cannot connect" in message and "gave up after 4 attempts" in message and url in message
    if kind is OLLAMA:
        assert (
            f"is `ollama serve` running on {url}? is the model pulled (`ollama pull qwen2.5-coder:1.5b`)?"
            in message
        )
    else:
        assert f"is the server at {provider.base_url} running" in message


# -- secrets -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_the_key_never_appears_in_errors_logs_or_reprs(kind, serve, caplog):
    caplog.set_level(logging.DEBUG)  # everything, httpx and httpcore included
    wire = kind.wire()
    echo = wire.error(400, f"bad request from key {KEY}")  # a server that echoes the key back
    cut = Reply(200, "x" * 190 + KEY)  # a key across the 200-character cut of a quoted body
    server = serve(
        wire, OK, wire.error(502, f"upstream said {KEY}"), echo, Reply(200, f"<html>{KEY}</html>"), cut
    )
    errors = []
    async with kind.create(server.url, retry=RetryPolicy(max_retries=0, base_delay=0.01)) as provider:
        await provider.complete(PROMPT)
        for _ in range(4):
            with pytest.raises(LLMError) as caught:
                await provider.complete(PROMPT)
            errors.append(caught.value)
        texts = [repr(provider), repr(vars(provider)), repr(provider.config), str(provider.config.to_dict())]
    sent = [r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in server.requests]
    assert all(KEY in s for s in sent)  # the key did go over the wire...
    assert "***" in str(errors[1]) and errors[1].status == 400
    assert_no_key(*(full_text(e) for e in errors), *texts, caplog.text)  # ...and nowhere else
    assert KEY[:8] not in str(errors[3])
    assert any(
        "HTTP Request: POST" in r.getMessage() for r in caplog.records
    )  # httpx's DEBUG/INFO lines were captured


def test_config_to_dict_masks_the_key():
    config = LLMProviderConfig("openai_api", "gpt-4o-mini", api_key=KEY)
    assert config.to_dict()["api_key"] == "***"
    assert KEY not in repr(config) and KEY not in str(config.to_dict())
    assert LLMProviderConfig("openai_api", "gpt-4o-mini").to_dict()["api_key"] is None


# -- registry, retry arithmetic, messages ------------------------------------------------------------------


def test_registry_knows_the_four_providers():
    assert known_providers() == ("local", "ollama_local", "openai_api", "anthropic_api")


def test_registry_refuses_an_unknown_name():
    config = LLMProviderConfig("openai_api", "gpt-4o-mini")
    config.provider_name = "gemini"  # past the config's own check
    with pytest.raises(LLMError) as caught:
        create_provider(config)
    assert "unknown LLM provider 'gemini'" in str(caught.value)
    assert "local, ollama_local, openai_api, anthropic_api" in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_model_name_is_refused_before_any_request(kind):
    config = LLMProviderConfig(kind.provider, "", "http://127.0.0.1:9", api_key=KEY)
    with pytest.raises(LLMError, match="no model_name"):
        create_provider(config)


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Wed, 01 Jan 2025 00:00:07 GMT"}, 7.0),
        ({"retry-after": "Tue, 31 Dec 2024 23:59:00 GMT"}, 0.0),  # already past
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ],
)
def test_parse_retry_after(headers, expected):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(headers, now=now) == expected


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.5)
    assert [policy.backoff(n, rand=0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(2, rand=1.0) == 0.5
    assert all(0.5 <= policy.backoff(2) <= 1.0 for _ in range(50))
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


def test_message_roles_are_checked():
    with pytest.raises(ValueError, match="unknown message role 'tool'"):
        Message("tool", "x")
