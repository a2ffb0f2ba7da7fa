"""Real HTTP servers on 127.0.0.1 that speak the LLM wire protocols, for tests of synapse_ng.llm.

    server = LoopbackServer(OpenAIWire(key="sk-..."), Reply(500, ...), OK)   # 500 first, then success
    server.url, server.requests, server.close()

A server is a stdlib ThreadingHTTPServer on an ephemeral port, in its own thread, speaking HTTP/1.1.
Each request takes the next *step* of its script; the last step repeats for ever:

    OK / Ok(text=..., tokens_in=..., tokens_out=..., finish=...)
        validate the request as the real server would (path, headers, key, required fields; a
        violation gets the error reply that server sends), then answer the protocol's success body
    Reply(status, body, headers)     answer exactly this
    HANG                             read the request, never answer (released when the server closes)

Every request is recorded (method, path, lower-cased headers, parsed JSON body, arrival time).
`close()` releases hung handlers, cuts keep-alive connections and joins every thread.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

# -- what a server is told to do ---------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return bytes(self.body), "application/octet-stream"


@dataclass(frozen=True)
class Ok:
    text: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish: str | None = None


OK = Ok()


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


HANG = _Hang()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any  # the parsed JSON, or None when the body is not JSON
    at: float  # time.monotonic() when the request had been read


# -- the protocols -----------------------------------------------------------------------------------


class Wire:
    """One server kind's protocol: the checks it makes and the bodies it answers."""

    name = ""

    def __init__(
        self,
        *,
        text: str = "fn priority() -> f64 { 1.0 }",
        tokens_in: int = 23,
        tokens_out: int = 9,
        key: str | None = None,
        models: set[str] | None = None,
    ):
        self.text = text
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out
        self.key = key
        self.models = models

    def check(self, request: Recorded) -> Reply | None:
        raise NotImplementedError

    def ok(self, request: Recorded, step: Ok) -> Reply:
        raise NotImplementedError

    def error(
        self, status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        raise NotImplementedError

    def _values(self, step: Ok) -> tuple[str, int, int]:
        text = self.text if step.text is None else step.text
        tokens_in = self.tokens_in if step.tokens_in is None else step.tokens_in
        tokens_out = self.tokens_out if step.tokens_out is None else step.tokens_out
        return text, tokens_in, tokens_out


def _bad_messages(messages: Any, roles: tuple[str, ...]) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return f"messages.{i}: role and string content required"
        if message.get("role") not in roles:
            return f"messages.{i}: unexpected role {message.get('role')!r}"
    return None


class OllamaWire(Wire):
    """Ollama's native API: POST /api/chat and POST /api/generate (Ollama 0.5+ bodies)."""

    name = "ollama"

    def __init__(self, **kwargs):
        kwargs.setdefault("models", {"qwen2.5-coder:1.5b"})
        super().__init__(**kwargs)

    def error(self, status, message, kind=None, headers=None) -> Reply:
        return Reply(status, {"error": message}, dict(headers or {}))

    def check(self, request: Recorded) -> Reply | None:
        if request.method != "POST" or request.path not in ("/api/chat", "/api/generate"):
            return Reply(404, "404 page not found")  # what Ollama's router answers
        if self.key is not None and request.headers.get("authorization") != f"Bearer {self.key}":
            return self.error(401, "unauthorized")
        body = request.body
        if not isinstance(body, dict):
            return self.error(400, "invalid character looking for beginning of value")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.error(400, "model is required")
        if self.models is not None and body["model"] not in self.models:
            return self.error(404, f'model "{body["model"]}" not found, try pulling it first')
        if "options" in body and not isinstance(body["options"], dict):
            return self.error(400, "options must be an object")
        if request.path == "/api/chat":
            problem = _bad_messages(body.get("messages"), ("system", "user", "assistant", "tool"))
            if problem:
                return self.error(400, problem)
        elif not isinstance(body.get("prompt"), str):
            return self.error(400, "prompt must be a string")
        return None

    def ok(self, request: Recorded, step: Ok) -> Reply:
        text, tokens_in, tokens_out = self._values(step)
        body = request.body
        common = {"model": body["model"], "created_at": "2025-01-01T00:00:00.000000Z"}
        stats = {
            "done": True,
            "done_reason": step.finish or "stop",
            "total_duration": 123456789,
            "load_duration": 1234567,
            "prompt_eval_count": tokens_in,
            "prompt_eval_duration": 2345678,
            "eval_count": tokens_out,
            "eval_duration": 3456789,
        }
        if request.path == "/api/chat":
            answer = {"message": {"role": "assistant", "content": text}}

            def chunk(piece: str) -> dict:
                return {
                    **common,
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }

            last = {**common, "message": {"role": "assistant", "content": ""}, **stats}
        else:
            answer = {"response": text}

            def chunk(piece: str) -> dict:
                return {**common, "response": piece, "done": False}

            last = {**common, "response": "", **stats, "context": [1, 2, 3]}
        if body.get("stream", True) is not False:  # Ollama streams unless told not to
            half = len(text) // 2
            lines = [chunk(text[:half]), chunk(text[half:]), last]
            return Reply(
                200,
                "".join(json.dumps(line) + "\n" for line in lines).encode(),
                {"content-type": "application/x-ndjson"},
            )
        return Reply(200, {**common, **answer, **stats})


class OpenAIWire(Wire):
    """OpenAI chat completions at {prefix}/chat/completions (prefix "/v1" as api.openai.com and most
    servers)."""

    name = "openai"

    def __init__(self, *, prefix: str = "/v1", **kwargs):
        super().__init__(**kwargs)
        self.prefix = prefix

    def error(self, status, message, kind=None, headers=None, code=None) -> Reply:
        body = {"error": {"message": message, "type": kind or "server_error", "param": None, "code": code}}
        return Reply(status, body, dict(headers or {}))

    def check(self, request: Recorded) -> Reply | None:
        if request.method != "POST" or request.path != f"{self.prefix}/chat/completions":
            return self.error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
        if self.key is not None:
            auth = request.headers.get("authorization", "")
            if not auth:
                return self.error(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization "
                    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                )
            if auth != f"Bearer {self.key}":
                given = auth.removeprefix("Bearer ")
                masked = given[:3] + "*" * max(0, len(given) - 7) + given[-4:]  # as OpenAI masks it
                return self.error(
                    401,
                    f"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    code="invalid_api_key",
                )
        body = request.body
        if not isinstance(body, dict):
            return self.error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.error(400, "you must provide a model parameter", "invalid_request_error")
        problem = _bad_messages(body.get("messages"), ("system", "developer", "user", "assistant", "tool"))
        if problem:
            return self.error(400, problem, "invalid_request_error")
        for name in ("temperature", "max_tokens", "seed"):
            if name in body and (body[name] is None or isinstance(body[name], bool)):
                return self.error(400, f"Invalid type for '{name}'", "invalid_request_error")
        if "temperature" in body and not 0 <= body["temperature"] <= 2:
            return self.error(400, "Invalid 'temperature': must be within [0, 2]", "invalid_request_error")
        if self.models is not None and body["model"] not in self.models:
            return self.error(
                404,
                f"The model `{body['model']}` does not exist or you do not have access to it.",
                "invalid_request_error",
                code="model_not_found",
            )
        return None

    def ok(self, request: Recorded, step: Ok) -> Reply:
        text, tokens_in, tokens_out = self._values(step)
        return Reply(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1735689600,
                "model": request.body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": step.finish or "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                },
                "system_fingerprint": "fp_test",
            },
        )


class AnthropicWire(Wire):
    """Anthropic's Messages API, POST /v1/messages, version 2023-06-01. Text comes back in two blocks."""

    name = "anthropic"

    def __init__(self, **kwargs):
        kwargs.setdefault("key", "sk-ant-test-key")
        super().__init__(**kwargs)

    def error(self, status, message, kind=None, headers=None) -> Reply:
        return Reply(
            status,
            {"type": "error", "error": {"type": kind or "api_error", "message": message}},
            dict(headers or {}),
        )

    def check(self, request: Recorded) -> Reply | None:
        if request.method != "POST" or request.path != "/v1/messages":
            return self.error(404, "Not Found", "not_found_error")
        if request.headers.get("x-api-key") != self.key:
            return self.error(401, "invalid x-api-key", "authentication_error")
        if not request.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required", "invalid_request_error")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self.error(400, "content-type must be application/json", "invalid_request_error")
        body = request.body
        if not isinstance(body, dict):
            return self.error(400, "invalid request: the body is not JSON", "invalid_request_error")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return self.error(400, "model: Field required", "invalid_request_error")
        if not isinstance(body.get("max_tokens"), int):
            return self.error(400, "max_tokens: Field required", "invalid_request_error")
        messages = body.get("messages")
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict) and message.get("role") == "system":
                    return self.error(
                        400,
                        'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                        'parameter, not "system" as an input message role.',
                        "invalid_request_error",
                    )
        problem = _bad_messages(messages, ("user", "assistant"))
        if problem:
            return self.error(400, problem, "invalid_request_error")
        if "system" in body and not isinstance(body["system"], (str, list)):
            return self.error(400, "system: Input should be a valid string", "invalid_request_error")
        if "temperature" in body and not 0 <= body["temperature"] <= 1:
            return self.error(400, "temperature: range: 0..1", "invalid_request_error")
        if self.models is not None and body["model"] not in self.models:
            return self.error(404, f"model: {body['model']}", "not_found_error")
        return None

    def ok(self, request: Recorded, step: Ok) -> Reply:
        text, tokens_in, tokens_out = self._values(step)
        half = len(text) // 2
        blocks = [{"type": "text", "text": piece} for piece in (text[:half], text[half:]) if piece]
        return Reply(
            200,
            {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": request.body["model"],
                "content": blocks,
                "stop_reason": step.finish or "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        )


# -- the server ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a forgotten keep-alive connection cannot hold a thread for ever
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_POST

    def _serve(self) -> None:
        owner: LoopbackServer = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Recorded(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            raw,
            body,
            time.monotonic(),
        )
        reply = owner._answer(request)
        if reply is None:  # HANG
            owner._released.wait()
            self.close_connection = True
            return
        data, content_type = reply.encode()
        try:
            self.send_response(reply.status)
            headers = {"content-type": content_type, **{k.lower(): v for k, v in reply.headers.items()}}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True


class LoopbackServer:
    def __init__(self, wire: Wire, *steps: Ok | Reply | _Hang, port: int = 0):
        self.wire = wire
        self.steps = list(steps) or [OK]
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{wire.name}-server",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _answer(self, request: Recorded) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if step is HANG:
            return None
        if isinstance(step, Ok):
            return self.wire.check(request) or self.wire.ok(request, step)
        return step

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.discard(sock)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._released.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:  # wake handlers blocked reading the next keep-alive request
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def refused_url() -> str:
    """A loopback URL where nothing listens (a port just bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def scripted_model_options(server: LoopbackServer) -> list[str]:
    """The command-line options that point a synapse-ng command at `server` as an OpenAI-compatible model."""
    return ["--provider", "openai_api", "--model", "scripted", "--endpoint", server.url + "/v1"]
