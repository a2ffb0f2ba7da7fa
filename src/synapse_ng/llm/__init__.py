"""Language models behind one small protocol.

    provider = create_provider(LLMProviderConfig("ollama_local", "qwen2.5-coder:1.5b"))
    async with provider:
        completion = await provider.complete([Message("user", "Write a haiku.")], max_tokens=64)
    completion.text, completion.tokens_in, completion.tokens_out, provider.usage

Providers: "ollama_local" (Ollama's /api/chat), "openai_api" (any OpenAI-compatible server),
"anthropic_api" (the Messages API) and "local" (the embedded model, when installed).
Every failure is an LLMError(provider, url, status, retryable) whose message says what to do next.
"""

from __future__ import annotations

from .base import BaseProvider, Completion, LLMError, Message, Provider, Usage
from .http import RetryPolicy
from .registry import PROVIDERS, create_provider, known_providers

__all__ = [
    "PROVIDERS",
    "BaseProvider",
    "Completion",
    "LLMError",
    "Message",
    "Provider",
    "RetryPolicy",
    "Usage",
    "create_provider",
    "known_providers",
]
