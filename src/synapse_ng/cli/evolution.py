"""`evolve` and `stats`: a search with a language model, its held-out result written where anyone can
reproduce it, and the statistics the store keeps across runs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import errors
from ..errors import UsageError
from ..models import CodeLanguage
from ..toolchain import SOURCE_SUFFIXES
from .evaluation import describe_evaluation
from .files import WORKSPACE_HELP, workspace, write_file
from .modules import LANGUAGES
from .output import Output, json_option

SOURCE_SUFFIX = {language: suffix for suffix, language in SOURCE_SUFFIXES.items()}

PROVIDERS = ["local", "ollama_local", "openai_api", "anthropic_api"]


def model_choice(provider: str | None, model: str | None, endpoint: str | None) -> tuple[str, str, str]:
    """Each of provider, model and endpoint: its flag, else LLM_PROVIDER / LLM_MODEL / LLM_ENDPOINT, else
    the default (the embedded model)."""
    from ..settings import settings

    environment = settings()
    provider = provider or environment.llm_provider or "local"
    if provider not in PROVIDERS:
        raise UsageError(f"LLM_PROVIDER is {provider!r}; it must be one of {', '.join(PROVIDERS)}")
    return provider, model or environment.llm_model or "", endpoint or environment.llm_endpoint or ""


def llm_config(provider: str | None, model: str | None, endpoint: str | None):
    from ..models import LLMProviderConfig

    provider, model, endpoint = model_choice(provider, model, endpoint)
    try:
        return LLMProviderConfig(provider_name=provider, model_name=model, api_endpoint=endpoint)
    except ValueError as error:
        raise UsageError(str(error)) from None


@click.command("evolve")
@click.option(
    "--component", "component_name", required=True, help="Component name (or a seed name that maps to one)."
)
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    help="The model's provider (default: LLM_PROVIDER, else local).",
)
@click.option("--model", help="Model name (local: a GGUF path; default: LLM_MODEL, else the embedded one).")
@click.option("--endpoint", help="Base URL of the provider's API (default: LLM_ENDPOINT).")
@click.option(
    "--language",
    type=LANGUAGES,
    default="rust",
    show_default=True,
    help="The language candidates are written in (the component must ship a skeleton in it).",
)
@click.option("--samples", type=int, default=24, show_default=True, help="Candidates to propose.")
@click.option("--minutes", type=float, help="Wall-clock budget.")
@click.option("--tokens", type=int, help="Token budget (prompt + completion).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--islands", type=int, default=2, show_default=True)
@click.option("--concurrency", type=int, default=2, show_default=True, help="Samples in flight.")
@click.option(
    "--starting-points/--no-starting-points",
    default=True,
    show_default=True,
    help="Also start from the component's starting points (its directions' shapes, filled in).",
)
@click.option("--resume", "resume_run_id", help="Continue a killed run.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where evaluations run.",
)
@click.option(
    "--ray-address", help="A running Ray cluster ('auto' or HOST:PORT); default: a private local instance."
)
@click.option("--workspace", "workspace_dir", help=f"Store and artifacts {WORKSPACE_HELP}.")
@json_option()
def evolve_command(
    component_name: str,
    provider: str | None,
    model: str | None,
    endpoint: str | None,
    language: str,
    samples: int,
    minutes: float | None,
    tokens: int | None,
    seed: int,
    islands: int,
    concurrency: int,
    starting_points: bool,
    resume_run_id: str | None,
    executor: str,
    ray_address: str | None,
    workspace_dir: str | None,
    out: Output,
) -> None:
    """Evolve a better implementation of a component with a language model, measured on held-out work."""
    import asyncio

    from ..components import get_component
    from ..evolution.executors import create_executor
    from ..evolution.search import Budget, EvolutionSearch, SearchConfig
    from ..evolution.store import Store
    from ..llm.registry import create_provider
    from .progress import ProgressDisplay

    component = get_component(component_name)
    chosen = CodeLanguage.from_name(language)
    if chosen not in component.languages:
        supported = ", ".join(lang.value for lang in component.languages)
        raise UsageError(
            f"{component.name} has no {chosen.value} skeleton to evolve; choose --language {supported}"
        )
    if samples < 0 or (minutes is not None and minutes <= 0) or islands < 1 or concurrency < 1:
        raise UsageError("--samples must be >= 0, --minutes > 0, --islands and --concurrency >= 1")
    store = Store(workspace(workspace_dir))
    llm = create_provider(llm_config(provider, model, endpoint))
    runner = create_executor(executor, ray_address)
    budget = Budget(samples=samples, minutes=minutes, tokens=tokens)
    # A live line on a terminal, plain lines into a file or pipe; nothing with --json (stdout is the JSON).
    display = ProgressDisplay(budget, live=sys.stderr.isatty() and not out.json)
    try:
        search = EvolutionSearch(
            component,
            llm,
            store,
            problem=f"Make {component.name} better: {component.objective.description}.",
            config=SearchConfig(
                islands=islands,
                concurrency=concurrency,
                seed=seed,
                language=chosen,
                starting_points=starting_points,
            ),
            budget=budget,
            on_progress=None if out.json else display,
            executor=runner,
        )
        with display:
            result = asyncio.run(search.run(resume_run_id))
        paths = _write_result(store, result) if result.improved else {}
    finally:
        runner.close()
    out.emit(_result_dict(result, paths), _describe_result(result, paths))
    sys.exit(errors.EXIT_OK)


def _write_result(store, result) -> dict[str, str]:
    """The improved module, its evidence and its source, under the store's results/RUN_ID/."""
    folder = store.directory / "results" / result.run_id
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        name: folder / file
        for name, file in (
            ("wasm", "candidate.wasm"),
            ("evidence", "evidence.json"),
            ("source", "candidate" + SOURCE_SUFFIX[result.best.language]),
        )
    }
    write_file(paths["wasm"], result.built.wasm)
    write_file(paths["evidence"], json.dumps(result.heldout.evidence, indent=2).encode())
    write_file(paths["source"], (result.built.source or result.best.source).encode())
    return {name: str(path) for name, path in paths.items()}


def _result_dict(result, paths: dict[str, str]) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "component": result.component,
        "improved": result.improved,
        "reason": result.reason,
        "stopped": result.stopped,
        "progress": vars(result.progress),
        "heldout": result.heldout.to_dict() if result.heldout else None,
        "files": paths,
    }


def _describe_result(result, paths: dict[str, str]) -> str:
    p = result.progress
    compile_rate = p.compiled / max(1, p.compiled + p.compile_failed)
    lines = [
        f"run {result.run_id} ({result.component}): {result.reason}",
        f"samples {p.samples}, compile rate {compile_rate:.0%}, correct {p.correct}, "
        f"duplicates skipped {p.duplicates}, tokens {p.tokens_in} in / {p.tokens_out} out, "
        f"{p.elapsed_s / 60:.1f} min",
    ]
    if p.first_improvement_s is not None:
        lines.append(f"first training improvement after {p.first_improvement_s / 60:.1f} min")
    if result.heldout and result.heldout.workloads:
        lines.append(describe_evaluation(result.heldout))
    for name, path in paths.items():
        lines.append(f"{name}: {path}")
    if paths:
        lines.append(f"check it anywhere: synapse-ng reproduce {paths['evidence']} {paths['wasm']}")
    return "\n".join(lines)


@click.command("stats")
@click.option("--workspace", "workspace_dir", help=f"Store to read {WORKSPACE_HELP}.")
@json_option()
def stats_command(workspace_dir: str | None, out: Output) -> None:
    """The engine's statistics, read from its store (they survive restarts)."""
    from ..evolution.store import Store

    statistics = Store(workspace(workspace_dir)).statistics()
    out.emit(statistics, "\n".join(f"{key}: {value}" for key, value in statistics.items()))
