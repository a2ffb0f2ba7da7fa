"""Evolve a component with a language model for a fixed time and report what the search achieved.

    .venv/bin/python benchmarks/evolution.py [--component task_allocation] [--language rust] [--minutes 20]
        [--seed 1] [--provider local] [--model M] [--endpoint URL] [--arms full,tuner,shapes]

`--arms` runs the ablation, each arm for the same minutes, one after the other, and prints them side by
side: `full` the component's starting points (the directions' code shapes with their rules filled in
plainly), the model and the tuner; `model` the model and the tuner from the baseline alone; `tuner` the
tuner alone from the baseline (no model); `shapes` the starting points compiled as written and tuned, no
model. What the model adds is the gap between `full` and `shapes`; after the table, `full`'s winner
against each other arm's on the held-out instances, with the significance test (benchmarks/arm_pairs.py).

Prints samples, compile rate, correct rate, the minutes to the first candidate that beat best fit on the
training workloads, and the best candidate's held-out excess over the L1 bound on OR3 and Weibull 5k,
beside best fit (measured in the same run) and FunSearch's published figures; for other components the
held-out figures against the baseline. Where the workloads have instances, the held-out significance test
(evolution.significance) and, for gossip, the baseline's spread under other random streams.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from arm_pairs import print_pairs  # benchmarks/, beside this script

from synapse_ng.components import get_component
from synapse_ng.evolution.search import Budget, EvolutionSearch, SearchConfig
from synapse_ng.evolution.store import Store
from synapse_ng.llm.registry import create_provider
from synapse_ng.models import CodeLanguage, LLMProviderConfig
from synapse_ng.wasm.sandbox import WASMTIME_VERSION

FUNSEARCH = {"or3": 3.11, "weibull_5k": 0.68}
PROBLEMS = {
    "task_allocation": (
        "Online bin packing: use fewer bins than best fit on items from the same distributions"
        " as the training workloads."
    ),
    "raft_consensus": (
        "Closing a proposal is slow: the vote tally de-duplicates votes with a quadratic scan."
        " Make it use less fuel."
    ),
    "gossip_protocol": (
        "Gossip takes too long to reach 99 % of the network: choose the peers to forward to so that the"
        " message spreads faster (lower t99), without losing coverage."
    ),
}

ARMS = {
    "full": "the starting points, the model and the tuner",
    "model": "the model and the tuner from the baseline (no starting points)",
    "tuner": "the tuner alone, from the baseline",
    "shapes": "the starting points (the directions' shapes, filled in) tuned, no model",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--component", default="task_allocation")
    parser.add_argument("--language", default="rust", choices=["rust", "c", "wat"])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument(
        "--samples", type=int, default=10_000, help="Upper bound; the minutes usually end the run."
    )
    parser.add_argument("--provider", default="local")
    parser.add_argument("--model", default="")
    parser.add_argument("--endpoint")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workspace", help="Default: a fresh temporary directory.")
    parser.add_argument("--arms", default="full", help=f"Comma-separated, of: {', '.join(ARMS)}.")
    args = parser.parse_args()
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown or not arms:
        parser.error(f"--arms: unknown arm {', '.join(unknown) or '(none)'}; choose from {', '.join(ARMS)}")
    component = get_component(args.component)
    if "shapes" in arms and not component.starting_points_for(CodeLanguage.from_name(args.language)):
        parser.error(f"--arms shapes: {component.name} has no {args.language} starting points")

    workspace = Path(args.workspace or tempfile.mkdtemp(prefix="synapse-evolution-bench-"))
    provider = create_provider(
        LLMProviderConfig(args.provider, args.model, args.endpoint, timeout_seconds=600)
    )
    print(f"# evolution benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" wasmtime {WASMTIME_VERSION}"
    )
    print(
        f"# provider {provider.name}, model {provider.model}; budget {args.minutes:g} minutes;"
        f" seed {args.seed}; language {args.language}; store {workspace}\n"
    )
    rows = []
    for arm in arms:
        if len(arms) > 1:
            print(f"\n## arm {arm}: {ARMS[arm]}\n", flush=True)
        store = Store(workspace / arm if len(arms) > 1 else workspace)
        result = run_arm(args, component, provider, store, arm)
        report(component, store, result)
        rows.append((arm, result, store))
    if len(rows) > 1:
        print_arms(component, rows)


def run_arm(args, component, provider, store: Store, arm: str):
    search = EvolutionSearch(
        component,
        provider,
        store,
        problem=PROBLEMS.get(
            component.name, f"Make {component.name} better: {component.objective.description}."
        ),
        config=SearchConfig(
            seed=args.seed,
            language=CodeLanguage.from_name(args.language),
            use_model=arm in ("full", "model"),
            starting_points=arm in ("full", "shapes"),
        ),
        budget=Budget(samples=args.samples, minutes=args.minutes),
        on_progress=lambda p: print(
            f"  {p.elapsed_s / 60:5.1f} min  samples {p.samples:3d}  compiled {p.compiled:3d}"
            f"  correct {p.correct:3d}  best {p.best_improvement_pct:+.3f} %",
            flush=True,
        ),
    )
    return asyncio.run(search.run())


def report(component, store: Store, result) -> None:
    p = result.progress
    attempts = p.compiled + p.compile_failed
    print(
        f"\nsamples {p.samples} (proposals {p.proposals}), duplicates {p.duplicates},"
        f" tokens {p.tokens_in} in / {p.tokens_out} out, {p.elapsed_s / 60:.1f} min;"
        f" stopped: {result.stopped}"
    )
    print(
        f"compile rate {p.compiled}/{attempts} = {p.compiled / max(1, attempts):.0%};"
        f" correct {p.correct}/{p.compiled} = {p.correct / max(1, p.compiled):.0%}"
    )
    first = f"{p.first_improvement_s / 60:.1f} min" if p.first_improvement_s is not None else "never"
    print(f"first candidate better than best fit on the training workloads: {first}")
    print(f"outcome: {result.reason}")
    # Where the samples went: the model's blocks and edits, rustc's own fixes, model repairs, tunes.
    by_operator = Counter(
        (row.operator, row.status) for row in store.candidates(result.run_id) if row.operator != "baseline"
    )
    print(
        "\nby operator: " + "; ".join(f"{op} {status} {n}" for (op, status), n in sorted(by_operator.items()))
    )
    if result.heldout and result.heldout.workloads and component.name == "task_allocation":
        print(f"\n{'held-out':<12} {'best fit':>10} {'evolved':>10} {'FunSearch':>10}   (excess over L1)")
        for w in result.heldout.workloads:
            print(
                f"{w['id']:<12} {w['baseline']['excess_pct']:>9.2f}% {w['candidate']['excess_pct']:>9.2f}%"
                f" {FUNSEARCH[w['id']]:>9.2f}%"
            )
    elif result.heldout and result.heldout.workloads:
        metric = component.objective.metric
        print(f"\n{'held-out':<12} {'baseline':>16} {'evolved':>16} {'better by':>10}   ({metric})")
        for w in result.heldout.workloads:
            print(
                f"{w['id']:<12} {w['baseline'][metric]:>16,} {w['candidate'][metric]:>16,}"
                f" {w['improvement_pct']:>9.2f}%"
            )
    verdict = (result.heldout.aggregate or {}).get("significance") if result.heldout else None
    if verdict:
        print(
            f"\nsignificance: {verdict['test']}: {verdict['instances']} instances,"
            f" {verdict['nonzero_pairs']} differ, p = {verdict['p_value']:.3g} (level {verdict['level']:g})"
            f" -> {'passed' if verdict['passed'] else 'not passed'}"
        )
        if "stream_gains_pct" in verdict:
            gains = ", ".join(f"{g:+.2f}" for g in verdict["stream_gains_pct"])
            print(f"baseline under other random streams, gain %: {gains}; beaten: {verdict['beats_streams']}")
    if result.best:
        print(f"\nbest block (candidate {result.best.id}):\n{result.best.source}")
        print(f"its line, from the baseline: {lineage(store, result)}")


def lineage(store: Store, result) -> str:
    """Who made the best block: the operators from the baseline down to it (a start is ours, `llm-*` the
    model's, `tune` the tuner's), so a win is credited to what found it."""
    rows = {row.id: row for row in store.candidates(result.run_id)}
    chain, row = [], rows.get(result.best.id)
    while row is not None:
        chain.append(f"{row.operator} #{row.id}")
        row = rows.get(row.parent_id) if row.parent_id is not None else None
    steps = list(reversed(chain))
    # Runs of tunes are many: count them instead of listing each.
    out: list[str] = []
    for step in steps:
        if step.startswith("tune") and out and out[-1].startswith("tune"):
            count = int(out[-1].split(" x")[1]) + 1 if " x" in out[-1] else 2
            out[-1] = f"tune x{count}"
        else:
            out.append(step)
    return " -> ".join(out)


def print_arms(component, rows) -> None:
    """The arms side by side: what each judged, its best training gain, and what held out."""
    print(f"\n## the arms side by side ({component.name}, the same minutes each)\n")
    print(
        f"{'arm':<8} {'judged':>7} {'model':>6} {'settings':>9} {'best train':>11} {'held out':>10}"
        f" {'p':>8}  outcome"
    )
    for arm, result, store in rows:
        p = result.progress
        answers = sum(1 for row in store.candidates(result.run_id) if row.operator.startswith("llm-"))
        verdict = (result.heldout.aggregate or {}).get("significance") if result.heldout else None
        heldout = (
            f"{result.heldout.improvement_pct:+.3f}%"
            if result.heldout and result.heldout.improvement_pct is not None
            else "-"
        )
        print(
            f"{arm:<8} {p.samples:>7} {answers:>6}"
            f" {p.settings_measured:>9} {p.best_improvement_pct:>+10.3f}% {heldout:>10}"
            f" {verdict['p_value'] if verdict else float('nan'):>8.3g}  {result.reason}"
        )
    # Whether the arms' winners differ beyond chance, on the same held-out instances.
    print_pairs(
        component.objective,
        [(arm, result.heldout.workloads if result.heldout else None) for arm, result, _ in rows],
    )


if __name__ == "__main__":
    main()
