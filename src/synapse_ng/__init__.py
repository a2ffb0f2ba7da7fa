"""Synapse-NG: a network that evolves, verifies and safely deploys its own hot code as WebAssembly.

The public API is the seed's names; everything else lives in the subpackages. The engine's names are
imported on first use, so that `import synapse_ng.wasm` does not load the whole engine.
"""

from .models import (
    CodeLanguage,
    GeneratedCode,
    HealthIssue,
    InefficencyType,
    Inefficiency,
    InefficiencyType,
    LLMProviderConfig,
)

_ENGINE_NAMES = {
    "EvolutionaryEngineManager",
    "get_evolutionary_engine_manager",
    "initialize_evolutionary_engine_manager",
    "is_evolutionary_engine_manager_enabled",
}


def __getattr__(name: str):
    if name in _ENGINE_NAMES:
        from .evolution import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'synapse_ng' has no attribute {name!r}")


__all__ = [
    "CodeLanguage",
    "EvolutionaryEngineManager",
    "GeneratedCode",
    "HealthIssue",
    "Inefficiency",
    "InefficencyType",
    "InefficiencyType",
    "LLMProviderConfig",
    "get_evolutionary_engine_manager",
    "initialize_evolutionary_engine_manager",
    "is_evolutionary_engine_manager_enabled",
]
