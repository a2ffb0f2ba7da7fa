"""The seed's public face of the Evolutionary Engine: `EvolutionaryEngineManager`.

    engine = EvolutionaryEngineManager(llm_config)
    generated = await engine.generate_optimized_code(issue, additional_context)

`issue` is an Inefficiency or a HealthIssue; its `affected_component` names the component (the seed's
names map through the registry). A bounded search runs, and what comes back is a GeneratedCode whose
`estimated_improvement` is the improvement *measured* on held-out workloads, with the WASM, its hash,
the compile log and the evidence; or None when nothing beat the baseline (the reason is logged and
stored with the run). A component the engine does not know gets a single free-form generation with the
seed's `execute` ABI: compiled and statically checked, but unmeasured (improvement None) and never
eligible for automatic deployment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

from ..components import get_component
from ..errors import UsageError
from ..models import CodeLanguage, GeneratedCode, HealthIssue, Inefficiency, LLMProviderConfig
from ..outcome import Stage
from ..settings import settings
from ..toolchain import CompileOptions, CompileStatus, compile_source
from ..wasm.inspect import inspect_wasm
from ..wasm.policy import ExportSpec, WasmPolicy
from .attempt import Attempt
from .extract import extract_candidate
from .search import Budget, EvolutionSearch, SearchConfig, SearchResult
from .store import Store

logger = logging.getLogger(__name__)

# The seed's free-form ABI, for components the engine has no contract for.
EXECUTE_EXPORT = ExportSpec("execute", ("i32", "i32"), ("i32",))


class EvolutionaryEngineManager:
    def __init__(
        self,
        llm_config: LLMProviderConfig | None = None,
        workspace_dir: str | None = None,  # None: the one default workspace (settings.py)
        rustc_path: str = "rustc",
        enable_sandbox: bool = True,
        *,
        budget: Budget = Budget(samples=8),
        search_config: SearchConfig = SearchConfig(),
        provider=None,
    ):
        self.llm_config = llm_config or LLMProviderConfig()
        self.workspace_dir = str(workspace_dir or settings().default_workspace())
        self.rustc_path = rustc_path
        if not enable_sandbox:
            # The seed let callers switch its (static-only) checks off. Here the sandbox is what makes
            # running generated code safe at all, so it stays on; the argument is accepted for callers.
            logger.warning("enable_sandbox=False is ignored: generated code only ever runs in the sandbox")
        self.enable_sandbox = True
        self.budget = budget
        self.search_config = search_config
        self.store = Store(Path(self.workspace_dir))
        self._provider = provider
        self.last_result: SearchResult | None = (
            None  # the last search's, for callers that need more than None
        )
        logger.info(
            "EvolutionaryEngineManager initialized: LLM %s/%s, workspace %s",
            self.llm_config.provider_name,
            self.llm_config.model_name or "(embedded)",
            self.workspace_dir,
        )

    @property
    def provider(self):
        if self._provider is None:
            from ..llm.registry import create_provider

            self._provider = create_provider(self.llm_config)
        return self._provider

    def _compile_options(self) -> CompileOptions:
        return CompileOptions(rustc_path=self.rustc_path)

    async def generate_optimized_code(
        self,
        issue: Inefficiency | HealthIssue,
        additional_context: dict | None = None,
        *,
        exchange=None,
        seed: int | None = None,
        minutes: float | None = None,
        language: str | None = None,
        deployed: str | None = None,
        banned: tuple[str, ...] = (),
    ) -> GeneratedCode | None:
        """`exchange`, `seed`, `minutes`, `language`: one island of a collaborative evolution
        (node/islands.py), with the island's seed, the minutes left and the evolution's language.
        `deployed`, `banned`: the live block to start from and beat, and rolled-back blocks never to
        propose again (node/lessons.py; EvolutionSearch)."""
        problem = describe_problem(issue, additional_context)
        component_name = issue.affected_component
        logger.info("===== starting code generation for %s =====", component_name)
        try:
            component = get_component(component_name)
        except UsageError:
            logger.info("no component contract for %r: free-form generation, unmeasured", component_name)
            return await self._free_form(component_name, problem)
        started = time.monotonic()
        config, budget = self.search_config, self.budget
        if seed is not None:
            config = replace(config, seed=seed)
        if language is not None:
            config = replace(config, language=CodeLanguage(language))
        if minutes is not None:
            budget = replace(budget, minutes=minutes)
        search = EvolutionSearch(
            component,
            self.provider,
            self.store,
            problem=problem,
            config=config,
            budget=budget,
            compile_options=self._compile_options(),
            exchange=exchange,
            deployed=deployed,
            banned=tuple(banned),
        )
        result = await search.run()
        self.last_result = result
        logger.info("===== generation finished in %.2fs: %s =====", time.monotonic() - started, result.reason)
        built, heldout, best = result.built, result.heldout, result.best
        if not result.improved or built is None or heldout is None or best is None:
            return None
        logger.info(
            "WASM %d bytes, SHA-256 %s, held-out improvement %.3f %%",
            len(built.wasm),
            built.sha256,
            heldout.improvement_pct,
        )
        return GeneratedCode(
            language=config.language,
            source_code=built.source or best.source,
            description=f"evolved {component.name}: {result.reason} (run {result.run_id})",
            target_component=component_name,
            estimated_improvement=heldout.improvement_pct,
            wasm_binary=built.wasm,
            wasm_hash=built.sha256,
            compilation_log=heldout.log or "",
            evidence=heldout.evidence,
            measured=True,
            run_id=result.run_id,
        )

    async def _free_form(self, component_name: str, problem: str) -> GeneratedCode | None:
        from ..llm.base import LLMError, Message

        prompt = (
            f"{problem}\n\nWrite a self-contained Rust program (rustc 1.63, no crates, no I/O) that compiles "
            "to WebAssembly and exports exactly "
            '`#[no_mangle] pub extern "C" fn execute(ptr: i32, len: i32) -> i32`, '
            "which reads `len` bytes of input at `ptr` in linear memory and returns a result code. "
            "Answer with one ```rust fenced block."
        )
        logger.info("built prompt (%d chars)", len(prompt))
        started = time.monotonic()
        try:
            completion = await self.provider.complete(
                [Message("user", prompt)], max_tokens=900, temperature=self.llm_config.temperature
            )
        except LLMError as error:
            logger.error("free-form generation failed: %s", error)
            return None
        logger.info("generated %d chars in %.2fs", len(completion.text), time.monotonic() - started)
        extraction = extract_candidate(completion.text, "", CodeLanguage.RUST, None)
        if extraction.block is None:
            logger.error("no code in the answer: %s", extraction.error)
            return None
        compiled = await asyncio.to_thread(
            compile_source, extraction.block, CodeLanguage.RUST, self._compile_options()
        )
        settings = {"free_form": True, "problem": problem}
        run_id = self.store.create_run(
            component_name, self.provider.name, self.provider.model, None, settings
        )
        attempt = Attempt(
            run_id,
            0,
            None,
            "free-form",
            CodeLanguage.RUST,
            source=extraction.block,
            provider=self.provider.name,
            model=self.provider.model,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
            generation_s=time.monotonic() - started,
            wasm_sha256=compiled.sha256,
            compile_s=compiled.duration_s,
        )
        stage = Stage.POLICY if compiled.status is CompileStatus.REJECTED else Stage.COMPILE
        attempt.end(compiled.status.outcome, stage, component_name, compiled.log)
        self.store.add(attempt)
        if not compiled.ok or compiled.wasm is None:
            self.store.finish_run(
                run_id, "no_improvement", f"free-form code did not compile ({compiled.status.value})", None
            )
            logger.error("free-form code did not compile (%s)", compiled.status.value)
            return None
        report = inspect_wasm(compiled.wasm, WasmPolicy(required_exports=(EXECUTE_EXPORT,)))
        if not report.ok:
            self.store.finish_run(
                run_id, "no_improvement", "free-form module rejected by the static checks", None
            )
            logger.error("free-form module rejected: %s", "; ".join(report.reasons))
            return None
        self.store.finish_run(
            run_id,
            "unmeasured",
            "free-form code compiled and checked; no contract to measure it against",
            None,
        )
        logger.info(
            "compiled in %.2fs: %d bytes, SHA-256 %s", compiled.duration_s, compiled.size, compiled.sha256
        )
        return GeneratedCode(
            language=CodeLanguage.RUST,
            source_code=extraction.block,
            description=(
                f"free-form code for {component_name} (no contract: unmeasured, not deployable automatically)"
            ),
            target_component=component_name,
            estimated_improvement=None,
            wasm_binary=compiled.wasm,
            wasm_hash=compiled.sha256,
            compilation_log=compiled.log,
            measured=False,
            run_id=run_id,
        )

    def get_statistics(self) -> dict:
        stats = self.store.statistics()
        stats.update(
            {
                "workspace_dir": self.workspace_dir,
                "llm_provider": self.llm_config.provider_name,
                "llm_model": self.llm_config.model_name or "embedded",
                "llm_endpoint": self.llm_config.api_endpoint or "",
            }
        )
        return stats

    def cleanup_workspace(self, keep_latest: int = 5) -> list[str]:
        """Removes old artifacts, keeping the newest `keep_latest` and every one a stored result uses."""
        return self.store.cleanup_artifacts(keep_latest)


def describe_problem(issue: Inefficiency | HealthIssue, additional_context: dict | None = None) -> str:
    if isinstance(issue, HealthIssue):
        lines = [
            f"Chronic problem in {issue.affected_component}: {issue.issue_type} ({issue.severity} severity)",
            issue.description,
            f"Current value {issue.current_value}, target {issue.target_value}.",
            f"Recommended: {issue.recommended_action}",
        ]
    else:
        kind = getattr(issue.type, "value", issue.type)
        lines = [
            f"Chronic problem in {issue.affected_component}: {kind} (severity {float(issue.severity):.2f})",
            issue.description,
            f"Current metric {issue.current_metric}, target {issue.target_metric}.",
            f"Suggested: {issue.suggested_improvement}",
        ]
    for key, value in (additional_context or {}).items():
        lines.append(f"{key}: {value}")
    return "\n".join(line for line in lines if line)


_manager: EvolutionaryEngineManager | None = None


def initialize_evolutionary_engine_manager(
    llm_config: LLMProviderConfig | None = None,
    workspace_dir: str | None = None,
    rustc_path: str = "rustc",
    enable_sandbox: bool = True,
    **kwargs,
) -> EvolutionaryEngineManager:
    """Create the process's engine (the seed's singleton accessor)."""
    global _manager
    _manager = EvolutionaryEngineManager(llm_config, workspace_dir, rustc_path, enable_sandbox, **kwargs)
    return _manager


def get_evolutionary_engine_manager() -> EvolutionaryEngineManager | None:
    return _manager


def is_evolutionary_engine_manager_enabled() -> bool:
    return _manager is not None
