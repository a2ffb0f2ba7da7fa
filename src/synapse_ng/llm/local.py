"""The "local" provider: a GGUF model run by llama.cpp in a worker process of its own, offline.

    provider = create_provider(LLMProviderConfig("local"))           # the embedded Qwen2.5-Coder
    provider = create_provider(LLMProviderConfig("local", "/models/other.gguf"))
    completion = await provider.complete([Message("user", "...")], max_tokens=256, temperature=0, seed=7)

Which model: LLMProviderConfig.model_name when it is a path to a .gguf, else $SYNAPSE_MODEL_PATH,
else the embedded model (assembled on first use if `synapse-ng model install` has not run yet).
A configured path that does not exist is refused when the provider is created.

Native code stays out of this process. llama.cpp runs in a model worker (`model_worker.py`), started
on first use, shared by every LocalProvider of this process that uses the same model, reused for every
call and stopped with this process (or `stop_model_workers()`). If the worker dies (a segmentation
fault, an abort, the out-of-memory killer), the call raises an LLMError that names the signal or exit
code, the model file and the worker's last lines of stderr, and the next call starts a fresh worker;
the caller (the engine, a node, the CLI) lives on. One generation runs at a time on a worker.

config.timeout_seconds really stops a generation: the worker checks the deadline after every token
and, while it evaluates the prompt, inside llama.cpp (its abort callback). A cancelled caller sends a
cancel that the worker obeys at its next check. A worker that does not stop within KILL_GRACE_S of
the deadline (hung in native code) is killed. The deadline covers the generation, not the one-off
model load (about 1.5-2 s; `await provider.load()` does it ahead of time).

temperature=0 is greedy decoding: with the same seed, prompt and model the text is repeatable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from ..models import LLMProviderConfig
from ..settings import settings
from .base import BaseProvider, CallHook, Completion, LLMError, Message
from .embedded_model import EMBEDDED, default_model_path, installed_model, model_dir, resolve_model_path
from .worker_process import (
    DEFAULT_N_CTX,
    PROVIDER_NAME,
    GenerationStopped,
    ModelWorker,
    Timings,
    default_threads,
    llama_cpp_installed,
    model_worker,
    model_workers,
    stop_model_workers,
)

logger = logging.getLogger(__name__)


class LocalProvider(BaseProvider):
    name = PROVIDER_NAME

    def __init__(
        self,
        config: LLMProviderConfig,
        *,
        on_call: CallHook | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        extra_buffer_types: bool | None = None,
    ):
        super().__init__(config, on_call=on_call)
        if not llama_cpp_installed():
            raise LLMError(
                "local: the embedded model's runtime is not installed (cannot import llama_cpp); "
                "run scripts/setup.sh, or choose another provider (ollama_local, openai_api, anthropic_api)",
                provider=self.name,
            )
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.extra_buffer_types = extra_buffer_types
        self._path: Path | None
        if config.model_name and config.model_name.strip():
            self._path = resolve_model_path(config.model_name)  # refuses a missing file now
            self.model = config.model_name.strip()
        elif settings().model_path:
            self._path = default_model_path(assemble=False)  # checked now, like a configured path
            self.model = str(self._path)
        else:
            self._path = installed_model()  # None: assembled on first use
            self.model = EMBEDDED.name
        self.endpoint = str(self._path or model_dir() / EMBEDDED.filename)
        self._worker: ModelWorker | None = None
        self.last_timings: Timings | None = None

    @property
    def busy(self) -> bool:
        """True while a generation runs on this provider's model worker."""
        return self._worker is not None and self._worker.busy

    @property
    def worker(self) -> ModelWorker | None:
        return self._worker

    def _worker_sync(self) -> ModelWorker:
        if self._worker is None:
            if self._path is None:
                self._path = default_model_path(assemble=True)
                self.endpoint = str(self._path)
            self._worker = model_worker(
                self._path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                extra_buffer_types=self.extra_buffer_types,
            )
        return self._worker

    async def load(self) -> ModelWorker:
        """Start the model worker now (assembling the embedded model if needed)
        instead of on the first call."""
        worker = await asyncio.to_thread(self._worker_sync)
        await asyncio.to_thread(worker.start)
        return worker

    async def _complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int | None
    ) -> Completion:
        worker = await asyncio.to_thread(self._worker_sync)
        timeout = self.config.timeout_seconds
        cancel = threading.Event()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        try:
            reply = await asyncio.to_thread(
                worker.chat,
                chat,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
                timeout_s=timeout,
                cancel=cancel,
            )
        except GenerationStopped as stopped:
            where = {
                "waiting": "waiting for the model (another generation held it)",
                "prompt": "while evaluating the prompt",
            }.get(stopped.where, f"after {stopped.tokens_out} tokens")
            raise LLMError(
                f"local: model {self.model!r} gave no complete answer within {timeout:g} s "
                f"(stopped {where}); "
                "raise timeout_seconds in the config, or lower max_tokens",
                provider=self.name,
                url=self.endpoint,
                retryable=True,
            ) from None
        finally:
            cancel.set()  # if this task was cancelled, the worker stops at its next check
        response = reply["response"]
        timings = reply.get("timings") or {}
        self.last_timings = Timings(
            timings.get("prompt_tokens", 0),
            timings.get("prompt_s", 0.0),
            timings.get("completion_tokens", 0),
            timings.get("generation_s", 0.0),
        )
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
        """The worker stays up for the rest of the process (other providers share it);
        `stop_model_workers()` stops it."""
        self._worker = None


__all__ = [
    "DEFAULT_N_CTX",
    "LocalProvider",
    "ModelWorker",
    "Timings",
    "default_threads",
    "model_worker",
    "model_workers",
    "stop_model_workers",
]
