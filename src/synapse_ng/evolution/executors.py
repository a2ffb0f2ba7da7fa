"""Where candidate evaluations run: on this machine, or spread over a Ray cluster.

Both run `evaluate` unchanged (cases, then workloads on candidate and baseline, in a worker process with
a time limit); a Ray task just runs it on whichever node of the cluster has a free CPU. Compiling stays
with the search, so every node measures exactly the bytes the search built.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

from ..components import Component, Split
from ..errors import UsageError
from ..models import CodeLanguage
from .build import BuiltModule
from .evaluate import Evaluation, evaluate
from .measure import component_ref, load_component

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationJob:
    """One evaluation to run, wherever it runs (the component travels apart, as its import path)."""

    block: str
    language: CodeLanguage
    split: Split
    built: BuiltModule
    random_cases: int
    time_limit_s: float

    def run(self, component: Component) -> Evaluation:
        return evaluate(
            component,
            self.block,
            self.language,
            self.split,
            random_cases=self.random_cases,
            time_limit_s=self.time_limit_s,
            built=self.built,
        )


class Executor:
    """Where evaluations run; `evaluate` is what the search calls."""

    name = "?"

    async def evaluate(
        self,
        component: Component,
        block: str,
        language: CodeLanguage,
        split: Split,
        *,
        built: BuiltModule,
        random_cases: int,
        time_limit_s: float,
    ) -> Evaluation:
        return await self._run(
            component, EvaluationJob(block, language, split, built, random_cases, time_limit_s)
        )

    async def _run(self, component: Component, job: EvaluationJob) -> Evaluation:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalExecutor(Executor):
    """Evaluations in worker processes on this machine; the search's concurrency bounds how many."""

    name = "local"

    async def _run(self, component: Component, job: EvaluationJob) -> Evaluation:
        return await asyncio.to_thread(job.run, component)


def _evaluate_on_a_node(ref: str, job: EvaluationJob) -> Evaluation:
    """Runs inside a Ray worker: rebuild the component from its import path and evaluate there."""
    import ray

    evaluation = job.run(load_component(ref))
    context = ray.get_runtime_context()
    evaluation.evaluated_by = f"ray node {context.get_node_id()[:12]} worker pid {os.getpid()}"
    return evaluation


class RayExecutor(Executor):
    """Evaluations as Ray tasks: `address` joins a running cluster ("auto" or "HOST:PORT"); None starts a
    private local instance for this process, shut down again by `close()`.

    A Ray driver installs fatal-signal handlers that pre-empt wasmtime's trap handling in its process
    (a trapping module there kills the process with SIGILL). The search never runs a sandbox in its own
    process (every evaluation is in a spawned worker or a Ray task), so they coexist; but do not call the
    sandbox directly in a process that holds a RayExecutor."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise UsageError(
                "the ray executor needs Ray: `pip install 'synapse-ng[ray]'` (scripts/setup.sh installs it)"
            ) from None
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {
                "address": address,
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                options.update(num_cpus=num_cpus, object_store_memory=200 << 20)
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise UsageError(
                    f"cannot reach the Ray cluster at {address!r}: {error}; is `ray start --head` running?"
                ) from None
        self._task = ray.remote(num_cpus=1)(_evaluate_on_a_node)
        logger.info("ray executor: %s", ray.cluster_resources())

    async def _run(self, component: Component, job: EvaluationJob) -> Evaluation:
        return await self._task.remote(component_ref(component), job)  # Ray references are awaitable

    def nodes(self) -> list[str]:
        return [node["NodeManagerAddress"] for node in self._ray.nodes() if node.get("Alive")]

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def create_executor(name: str, address: str | None = None):
    if name == "local":
        if address:
            raise UsageError("--ray-address goes with --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise UsageError(f"unknown executor {name!r}; use local or ray")
