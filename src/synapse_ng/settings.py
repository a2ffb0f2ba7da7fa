"""Every setting read from the environment, in one place, and the one precedence they all follow.

    a command-line flag  >  the environment  >  the node's node.json  >  the default

(node.json applies to node settings only; `NodeConfig.load` in node/config.py applies the layers.)
Nothing else in the package reads `os.environ` for its own settings: the variables below are the whole
list (the README points here). `settings()` reads the environment afresh on every call, so a test or a
long-running process that changes a variable sees the change.

The seed's own variables (its main.py), for a node (`node run`) and for the commands that choose a model
(`evolve`, `demo`, `network up`):

    ENABLE_EVOLUTIONARY_ENGINE whether a node's engine evolves chronic issues  (true/false, 1/0, yes/no)
    LLM_PROVIDER               local, ollama_local, openai_api, anthropic_api
    LLM_MODEL                  the model's name (local: a GGUF path)
    LLM_ENDPOINT               the provider's base URL
    EVOLUTION_WORKSPACE        the engine's store and artifacts (the seed's name for SYNAPSE_WORKSPACE)

Synapse-NG's own:

    SYNAPSE_WORKSPACE          runs, candidates and artifacts   default: the user data dir
                               (a node: DATA/engine)
    SYNAPSE_CACHE_DIR          compiled baselines (rebuildable)  default: the user cache dir
    SYNAPSE_MODEL_DIR          where the embedded model lives    default: user cache dir/models
    SYNAPSE_MODEL_PATH         a GGUF model instead of the embedded one
    SYNAPSE_OPERATOR_TOKEN     the operator's credential for CLI calls to a node  (else DIR/operator.token)
    SYNAPSE_BINPACKING_DATA    another copy of the FunSearch bin-packing sets  (else the package's copy)
    SYNAPSE_LLAMA_EXTRA_BUFTS  let llama.cpp use its repacked CPU buffer types  (off)
    OLLAMA_HOST                Ollama's address, Ollama's own variable  (127.0.0.1:11434)
    OPENAI_API_KEY             the key for openai_api when its config has none
    ANTHROPIC_API_KEY          the key for anthropic_api when its config has none
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import UsageError

APP_NAME = "synapse-ng"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNAPSE_", extra="ignore", frozen=True)

    workspace: Path | None = Field(
        default=None, validation_alias=AliasChoices("SYNAPSE_WORKSPACE", "EVOLUTION_WORKSPACE")
    )
    cache_dir: Path | None = None
    model_dir: Path | None = None
    model_path: str | None = None
    operator_token: str | None = None
    binpacking_data: Path | None = None
    llama_extra_bufts: bool = False
    ollama_host: str | None = Field(default=None, validation_alias=AliasChoices("OLLAMA_HOST"))
    openai_api_key: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    anthropic_api_key: str | None = Field(default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY"))
    enable_evolutionary_engine: bool | None = Field(
        default=None, validation_alias=AliasChoices("ENABLE_EVOLUTIONARY_ENGINE")
    )
    llm_provider: str | None = Field(default=None, validation_alias=AliasChoices("LLM_PROVIDER"))
    llm_model: str | None = Field(default=None, validation_alias=AliasChoices("LLM_MODEL"))
    llm_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("LLM_ENDPOINT"))

    def api_key(self, variable: str) -> str | None:
        """The key a provider's standard variable holds (OPENAI_API_KEY, ANTHROPIC_API_KEY), or None."""
        return {"OPENAI_API_KEY": self.openai_api_key, "ANTHROPIC_API_KEY": self.anthropic_api_key}[variable]

    @field_validator(
        "workspace",
        "cache_dir",
        "model_dir",
        "binpacking_data",
        "model_path",
        "operator_token",
        "enable_evolutionary_engine",
        "llm_provider",
        "llm_model",
        "llm_endpoint",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty or all-blank variable means "not set", as a shell user expects of `VAR= command`."""
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    def node_settings(self) -> dict[str, object]:
        """The node settings the environment sets, as NodeConfig keys (what it leaves unset is absent)."""
        values = {key: getattr(self, name) for key, name in NODE_FIELDS.items()}
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in values.items()
            if value is not None
        }

    def default_workspace(self) -> Path:
        return (self.workspace or Path(platformdirs.user_data_dir(APP_NAME))).expanduser()

    def default_cache_dir(self) -> Path:
        return (self.cache_dir or Path(platformdirs.user_cache_dir(APP_NAME))).expanduser()

    def default_model_dir(self) -> Path:
        # Not under SYNAPSE_CACHE_DIR: a throwaway cache (a test's) must not make the 1.1 GB model vanish.
        return (self.model_dir or Path(platformdirs.user_cache_dir(APP_NAME)) / "models").expanduser()


def settings() -> Settings:
    """The settings as the environment has them now; a variable that cannot be read is a UsageError."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in error.errors())
        raise UsageError(
            f"an environment variable has a value synapse-ng cannot use: {problems}; fix or unset it"
        ) from None


# NodeConfig key -> the Settings field the environment sets it through.
NODE_FIELDS = {
    "evolve": "enable_evolutionary_engine",
    "llm_provider": "llm_provider",
    "llm_model": "llm_model",
    "llm_endpoint": "llm_endpoint",
    "engine_workspace": "workspace",
}


# NodeConfig key -> the variables that can set it (the fields' own names for them): a program that sets a
# node's settings itself (a local network writing node.json) removes these from the node's environment,
# as a flag would override them.
def _variables(field: str) -> tuple[str, ...]:
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices), f"{field} is read under names of its own"
    return tuple(str(choice) for choice in alias.choices)


NODE_VARIABLES = {key: _variables(name) for key, name in NODE_FIELDS.items()}


def _variable(location: tuple) -> str:
    name = str(location[0]) if location else "?"
    return name if name.isupper() else f"SYNAPSE_{name.upper()}"
