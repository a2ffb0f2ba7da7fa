"""Providers by name, loaded lazily by import path, so a provider's dependencies (httpx, llama-cpp)
are imported only when it is used. Adding a provider is one entry in PROVIDERS.

A provider class is constructed as `cls(config, on_call=hook, **kwargs)` and must follow
`base.Provider` (subclassing `base.BaseProvider` gives usage accounting and the hook for free).
Every provider created here writes one log line per successful call on this module's logger
(provider, model, prompt chars, tokens in/out, latency); no handlers are configured here.
"""

from __future__ import annotations

import importlib
import logging

from ..models import LLMProviderConfig
from .base import BaseProvider, CallHook, Completion, LLMError, Provider

logger = logging.getLogger(__name__)

PROVIDERS: dict[str, str] = {
    "local": "synapse_ng.llm.local:LocalProvider",
    "ollama_local": "synapse_ng.llm.ollama:OllamaProvider",
    "openai_api": "synapse_ng.llm.openai:OpenAIProvider",
    "anthropic_api": "synapse_ng.llm.anthropic:AnthropicProvider",
}

# Imports whose absence means "the embedded model is not installed", not a bug.
_OPTIONAL_MODULES = {"local": ("synapse_ng.llm.local", "llama_cpp")}


def known_providers() -> tuple[str, ...]:
    return tuple(PROVIDERS)


def provider_class(name: str) -> type:
    """The class registered under `name`, imported now."""
    path = PROVIDERS.get(name)
    if path is None:
        raise LLMError(
            f"unknown LLM provider {name!r}; known providers: {', '.join(PROVIDERS)}", provider=name
        )
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if any(missing == m or missing.startswith(m + ".") for m in _OPTIONAL_MODULES.get(name, ())):
            raise LLMError(
                f"{name}: the embedded model is not installed (cannot import {missing}); "
                "run scripts/setup.sh, or choose another provider (ollama_local, openai_api, anthropic_api)",
                provider=name,
            ) from exc
        raise
    return getattr(module, class_name)


def create_provider(config: LLMProviderConfig, **kwargs) -> Provider:
    """The provider `config.provider_name` names. kwargs go to its constructor (HTTP providers take
    `transport` and `retry`; any provider takes `on_call`, called after the log line)."""
    cls = provider_class(config.provider_name)
    kwargs["on_call"] = _logging_hook(kwargs.get("on_call"))
    return cls(config, **kwargs)


def log_call(provider: BaseProvider, prompt_chars: int, completion: Completion) -> None:
    logger.info(
        "llm call provider=%s model=%s prompt_chars=%d tokens_in=%d tokens_out=%d latency_s=%.3f "
        "finish_reason=%s",
        provider.name,
        completion.model,
        prompt_chars,
        completion.tokens_in,
        completion.tokens_out,
        completion.latency_s,
        completion.finish_reason,
    )


def _logging_hook(then: CallHook | None) -> CallHook:
    if then is None:
        return log_call

    def hook(provider: BaseProvider, prompt_chars: int, completion: Completion) -> None:
        log_call(provider, prompt_chars, completion)
        then(provider, prompt_chars, completion)

    return hook
