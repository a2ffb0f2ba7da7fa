"""The tuner alone, two ways side by side in one run: one compile per constant setting, and many settings
measured from one build of the slotted block (evolution.slots). No language model: the search starts
from one block with constants (a gap penalty in task_allocation's first direction's shape) and tunes it
for the same minutes each way.

    .venv/bin/python benchmarks/tuner.py [--minutes 3] [--batch 24] [--seed 1]

Prints, per way: candidates judged in full (built, checked, measured), settings measured from slotted
builds, evaluations per minute (both counted), the best training improvement and the held-out result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from synapse_ng.components import get_component
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.llm.base import Completion
from synapse_ng.wasm.sandbox import WASMTIME_VERSION

START = (
    "fn priority(item: f64, bins: &[f64]) -> Vec<f64> {\n"
    "    const THRESHOLD: f64 = 20.0;\n    const PENALTY: f64 = 10.0;\n"
    "    bins.iter().map(|&remaining| { let gap = remaining - item; let mut score = -gap;\n"
    "        if gap > 0.0 && gap < THRESHOLD { score -= PENALTY; }\n        score }).collect()\n}\n"
)


@dataclass
class StartingBlock:
    """Stands where a model would: every call answers the starting block (the tuner does the rest)."""

    name: str = "none"
    model: str = "starting block"
    busy: bool = False

    async def complete(self, messages, **_) -> Completion:
        text = f"```rust\n{START}\n```"
        return Completion(text, self.name, self.model, 0, 0, 0.0, "stop")

    async def aclose(self) -> None:
        return None


def run(minutes: float, batch: int, seed: int) -> tuple[EvolutionSearch, object]:
    store = Store(Path(tempfile.mkdtemp(prefix="synapse-tuner-bench-")))
    search = EvolutionSearch(
        get_component("task_allocation"),
        StartingBlock(),
        store,
        problem="tune the constants",
        config=SearchConfig(islands=1, concurrency=1, tune_share=1.0, seed=seed, batch_settings=batch),
        budget=Budget(samples=100_000, minutes=minutes),
    )
    return search, asyncio.run(search.run())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"# tuner benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" wasmtime {WASMTIME_VERSION}; {args.minutes:g} minutes each way; seed {args.seed}\n"
    )
    rows = []
    for label, batch in (("one compile per setting", 0), (f"one build, {args.batch} settings", args.batch)):
        search, result = run(args.minutes, batch, args.seed)
        p = result.progress
        judged = p.compiled + p.compile_failed
        evaluations = judged + p.settings_measured
        per_minute = evaluations / (p.elapsed_s / 60)
        heldout = f"{result.heldout.improvement_pct:+.3f} %" if result.heldout else "-"
        rows.append((label, judged, p.settings_measured, per_minute, p.best_improvement_pct, heldout))
        print(f"{label}: {result.reason}", flush=True)
    print(
        f"\n{'way':<28} {'judged':>7} {'settings':>9} {'evals/min':>10} {'best train':>11} {'held out':>10}"
    )
    for label, judged, settings, per_minute, best, heldout in rows:
        print(f"{label:<28} {judged:>7} {settings:>9} {per_minute:>10.1f} {best:>+10.3f}% {heldout:>10}")
    print(f"\nevaluations per minute, ratio: {rows[1][3] / rows[0][3]:.1f}x")


if __name__ == "__main__":
    main()
