"""The "local" provider: a GGUF model run in this process by llama.cpp (llama-cpp-python), offline.

    provider = create_provider(LLMProviderConfig("local"))           # the embedded Qwen2.5-Coder
    provider = create_provider(LLMProviderConfig("local", "/models/other.gguf"))
    completion = await provider.complete([Message("user", "...")], max_tokens=256, temperature=0, seed=7)

Which model: LLMProviderConfig.model_name when it is a path to a .gguf, else $SYNAPSE_MODEL_PATH,
else the embedded model (assembled on first use if `synapse-ng model install` has not run yet).
A configured path that does not exist is refused when the provider is created.

The model is loaded once per process (a cache keyed by file and context size, guarded by a lock)
and shared by every LocalProvider; one generation runs at a time on a model. Prompts are formatted
with the chat template stored in the GGUF (llama-cpp-python's create_chat_completion). Generation
runs in a worker thread (asyncio.to_thread) and config.timeout_seconds really stops it: a stopping
criterion checks the deadline after every token, and an abort callback checks it inside llama.cpp
while the prompt is being evaluated; so a timed-out call raises LLMError(retryable=True) at the
deadline and the model is free again right away. If the awaiting task is cancelled, the worker
stops at its next check too. The deadline covers the generation, not the one-off model load
(about 1.5-2 s; `await provider.load()` does it ahead of time).

temperature=0 is greedy decoding: with the same seed, prompt and model the text is repeatable.
llama.cpp's own logging is silenced (verbose=False); no logging configuration is touched.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import llama_cpp
from llama_cpp import llama_chat_format

from ..models import LLMProviderConfig
from .base import BaseProvider, CallHook, Completion, LLMError, Message
from .embedded_model import EMBEDDED, default_model_path, installed_model, model_dir, resolve_model_path

DEFAULT_N_CTX = 8192  # room for ~6k-token prompts plus an answer

# llama.cpp's own log lines go to this logger at DEBUG (no handler is configured here). Routing them
# replaces llama-cpp-python's stderr printer, whose level table is off by one for this llama.cpp
# (it prints warnings such as "decode: removing memory module entries" even with verbose=False).
llama_logger = logging.getLogger(__name__ + ".llama_cpp")
_recent_errors: collections.deque[str] = collections.deque(maxlen=4)  # quoted in load errors
_LLAMA_LOG_ERROR = 4  # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation


@llama_cpp.llama_log_callback
def _forward_llama_log(level: int, text: bytes, _user_data) -> None:
    message = text.decode("utf-8", "replace").rstrip()
    if message:
        if level == _LLAMA_LOG_ERROR:
            _recent_errors.append(message)
        llama_logger.debug("%s", message)


_routed = False


def _route_llama_logs() -> None:
    global _routed
    if not _routed:
        llama_cpp.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
        _routed = True


def default_threads() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Deadline:
    """When a generation must stop: at `at` (monotonic seconds), or as soon as `cancel()` is called."""

    def __init__(self, at: float):
        self.at = at
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def expired(self) -> bool:
        return self._event.is_set() or time.monotonic() >= self.at


class _Stopped(Exception):
    """Raised in the worker thread when the deadline stopped a generation."""

    def __init__(self, tokens_out: int, waiting: bool = False):
        self.tokens_out = tokens_out
        self.waiting = waiting


class _CancellableFormatter:
    """The GGUF's chat template, plus a stopping criterion that ends generation at the deadline."""

    def __init__(self, inner, model: LoadedModel):
        self._inner = inner
        self._model = model

    def __call__(self, **kwargs):
        result = self._inner(**kwargs)
        criteria = llama_cpp.StoppingCriteriaList([self._model._check_deadline])
        if result.stopping_criteria is not None:
            criteria.extend(result.stopping_criteria)
        return replace(result, stopping_criteria=criteria)


@dataclass(eq=False)
class LoadedModel:
    """One llama.cpp model in memory, shared by every provider of this process that uses it."""

    llama: llama_cpp.Llama
    path: Path
    n_ctx: int
    n_threads: int
    load_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)  # held for the length of a generation
    _deadline: _Deadline | None = None
    _tokens: int = 0
    _stopped: bool = False  # the deadline (not the model) ended the last generation
    _abort_installed: bool = False

    def __post_init__(self) -> None:
        # Keep the ctypes callback alive as long as the model: llama.cpp holds a raw pointer to it.
        self._abort_callback = llama_cpp.ggml_abort_callback(self._abort_check)
        self._no_abort = llama_cpp.ggml_abort_callback(0)
        template = self.llama.metadata.get("tokenizer.chat_template")
        if template:
            eos_id = self.llama.token_eos()
            bos_id = self.llama.token_bos()
            inner = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=self.llama._model.token_get_text(eos_id) if eos_id != -1 else "",
                bos_token=self.llama._model.token_get_text(bos_id) if bos_id != -1 else "",
                stop_token_ids=[eos_id],
            )
            # The same formatter llama-cpp-python builds from the GGUF, with the deadline added.
            self.llama.chat_handler = llama_chat_format.chat_formatter_to_chat_completion_handler(_CancellableFormatter(inner, self))
        # Without a template in the GGUF llama-cpp-python picks a format itself; the abort callback
        # (installed for the whole generation in that case) still enforces the deadline.
        self._per_token_check = bool(template)

    @property
    def busy(self) -> bool:
        """True while a generation runs (or waits to run) on this model."""
        return self.lock.locked()

    # -- called by llama.cpp, in the worker thread -------------------------------------------------

    def _abort_check(self, _data) -> bool:
        deadline = self._deadline
        return deadline is not None and deadline.expired()

    def _check_deadline(self, input_ids, logits) -> bool:
        self._tokens += 1
        if self._abort_installed and self._per_token_check:
            # The prompt is evaluated; from here the per-token check suffices and costs less than a
            # callback at every node of llama.cpp's graph.
            self._set_abort(False)
        deadline = self._deadline
        if deadline is not None and deadline.expired():
            self._stopped = True
            return True
        return False

    def _set_abort(self, on: bool) -> None:
        llama_cpp.llama_set_abort_callback(self.llama.ctx, self._abort_callback if on else self._no_abort, None)
        self._abort_installed = on

    # -- one generation ----------------------------------------------------------------------------

    def chat(self, messages: list[dict], *, max_tokens: int, temperature: float, seed: int | None, deadline: _Deadline) -> dict:
        """Run one chat completion; raises _Stopped when the deadline stops it."""
        if not self.lock.acquire(timeout=max(0.0, deadline.at - time.monotonic())):
            raise _Stopped(0, waiting=True)
        try:
            if deadline.expired():
                raise _Stopped(0, waiting=True)
            self._deadline, self._tokens, self._stopped = deadline, 0, False
            self._set_abort(True)
            try:
                response = self.llama.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, temperature=temperature, seed=seed
                )
            except RuntimeError:
                if deadline.expired():  # llama_decode was aborted mid-prompt
                    self.llama.reset()
                    raise _Stopped(self._tokens) from None
                raise
            finally:
                self._set_abort(False)
                self._deadline = None
            if self._stopped:
                raise _Stopped(self._tokens)
            return response
        finally:
            self.lock.release()


_MODELS: dict[tuple[str, int], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: str | os.PathLike, *, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None) -> LoadedModel:
    """The model at `path`, loaded on first use and then shared by the whole process."""
    path = Path(path).resolve()
    key = (str(path), n_ctx)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            threads = n_threads or default_threads()
            _route_llama_logs()
            _recent_errors.clear()
            started = time.monotonic()
            try:
                llama = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
            except (ValueError, RuntimeError) as error:
                said = "; ".join(_recent_errors)
                raise LLMError(
                    f"local: llama.cpp cannot load {path} ({error}{': ' + said if said else ''}); is it a complete GGUF model? "
                    "For the embedded model run `synapse-ng model install --reverify`",
                    provider=LocalProvider.name,
                    url=str(path),
                ) from None
            loaded = LoadedModel(llama, path, n_ctx, threads, time.monotonic() - started)
            _MODELS[key] = loaded
        return loaded


def loaded_models() -> list[LoadedModel]:
    with _MODELS_LOCK:
        return list(_MODELS.values())


def unload_models() -> None:
    """Free every loaded model (waiting for running generations). The next call loads again."""
    with _MODELS_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for loaded in models:
        with loaded.lock:
            loaded.llama.close()


class LocalProvider(BaseProvider):
    name = "local"

    def __init__(
        self,
        config: LLMProviderConfig,
        *,
        on_call: CallHook | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
    ):
        super().__init__(config, on_call=on_call)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._path: Path | None
        if config.model_name and config.model_name.strip():
            self._path = resolve_model_path(config.model_name)  # refuses a missing file now
            self.model = config.model_name.strip()
        elif os.environ.get("SYNAPSE_MODEL_PATH", "").strip():
            self._path = default_model_path(assemble=False)  # checked now, like a configured path
            self.model = str(self._path)
        else:
            self._path = installed_model()  # None: assembled on first use
            self.model = EMBEDDED.name
        self.endpoint = str(self._path or model_dir() / EMBEDDED.filename)
        self._loaded: LoadedModel | None = None

    @property
    def busy(self) -> bool:
        """True while a generation runs on this provider's model."""
        return self._loaded is not None and self._loaded.busy

    @property
    def loaded_model(self) -> LoadedModel | None:
        return self._loaded

    def _load_sync(self) -> LoadedModel:
        if self._loaded is None:
            if self._path is None:
                self._path = default_model_path(assemble=True)
                self.endpoint = str(self._path)
            self._loaded = load_model(self._path, n_ctx=self.n_ctx, n_threads=self.n_threads)
        return self._loaded

    async def load(self) -> LoadedModel:
        """Load the model now (assembling the embedded one if needed) instead of on the first call."""
        return self._loaded or await asyncio.to_thread(self._load_sync)

    async def _complete(self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int | None) -> Completion:
        loaded = await self.load()
        timeout = self.config.timeout_seconds
        deadline = _Deadline(time.monotonic() + timeout)
        chat = [{"role": m.role, "content": m.content} for m in messages]
        try:
            response = await asyncio.to_thread(
                loaded.chat, chat, max_tokens=max_tokens, temperature=temperature, seed=seed, deadline=deadline
            )
        except _Stopped as stopped:
            where = "waiting for the model (another generation held it)" if stopped.waiting else f"after {stopped.tokens_out} tokens"
            raise LLMError(
                f"local: model {self.model!r} gave no complete answer within {timeout:g} s (stopped {where}); "
                "raise timeout_seconds in the config, or lower max_tokens",
                provider=self.name,
                url=self.endpoint,
                retryable=True,
            ) from None
        except ValueError as error:  # llama-cpp-python: prompt longer than the context, bad arguments
            raise LLMError(
                f"local: {error}; shorten the prompt, or create the provider with a larger n_ctx (now {loaded.n_ctx})",
                provider=self.name,
                url=self.endpoint,
            ) from None
        except RuntimeError as error:
            raise LLMError(f"local: llama.cpp failed: {error}", provider=self.name, url=self.endpoint) from None
        finally:
            deadline.cancel()  # if this task was cancelled, the worker stops at its next check
        choice = response["choices"][0]
        usage = dict(response.get("usage") or {})
        return Completion(
            text=choice["message"].get("content") or "",
            provider=self.name,
            model=self.model,
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            latency_s=0.0,
            finish_reason=choice.get("finish_reason"),
            raw_usage=usage,
        )

    async def aclose(self) -> None:
        """The model stays loaded for the rest of the process (other providers share it);
        `unload_models()` frees it."""
        self._loaded = None


__all__ = ["DEFAULT_N_CTX", "LoadedModel", "LocalProvider", "default_threads", "load_model", "loaded_models", "unload_models"]
