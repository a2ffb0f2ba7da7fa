"""Two arms' winners, instance by instance: is one better than the other beyond chance?

    .venv/bin/python benchmarks/arm_pairs.py STORE [--fresh]

STORE is the store an ablation printed (`benchmarks/evolution.py --arms full,shapes` keeps each arm's runs
in STORE/ARM). An arm whose winner passed the held-out check recorded its evidence, with the measure of
every held-out instance; every arm is measured on the same instances, so two winners can be compared pair
by pair: the first arm's gain over the other's on each instance (in percent of the other's), in Wilcoxon's
signed-rank test, the held-out check's own (synapse_ng.evolution.significance), one-sided each way. A
difference in the arms' mean gains over the baseline says little on its own: the per-instance test says
whether it is more than the spread of two tunings of one rule. `benchmarks/evolution.py --arms` prints the
same lines after its table.

The held-out sets are small (25 instances for task_allocation), so a difference of a tenth of a percent
can hide in them. `--fresh` (task_allocation) also measures both winners' recorded WASM, in the sandbox, on
a fresh draw from the same two distributions with seeds no search or held-out set uses (FRESH), and tests
those pairs the same way: more instances, the same question, and nothing any arm could have chosen by.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synapse_ng.components import Component, Objective, get_component
from synapse_ng.components.base import Split, Workload
from synapse_ng.components.task_allocation.generators import generate_instances
from synapse_ng.evolution.significance import instance_gains, signed_rank_test
from synapse_ng.evolution.store import Store
from synapse_ng.wasm.sandbox import Sandbox

# (workload, generator, seed, instances, items): the held-out sets' shapes (OR3: 500 items, Weibull 5k: 5,000)
# with more instances, from seeds far from the training ones (150_001, 150_002) and the scale case's.
FRESH = (
    ("fresh_or", "or", 7_000_001, 200, 500),
    ("fresh_weibull", "weibull", 7_000_002, 40, 5000),
)


def heldout_of(evidence: dict) -> list[dict]:
    return [w for w in evidence.get("workloads", []) if w.get("split") == "heldout"]


def compare(objective: Objective, first: list[dict], second: list[dict]) -> dict | None:
    """The first winner against the second on the instances both were measured on, all together and per
    workload: how many instances the first packs better and worse, the one-sided p-value each way, and
    each workload's mean; None when the instances do not pair up (an exact component's cost is not sampled
    per instance)."""
    by_id = {w["id"]: w for w in second}
    if sorted(by_id) != sorted(w["id"] for w in first):
        raise ValueError("the two winners were measured on different held-out workloads")
    gains: dict[str, list[float]] = {}
    means: dict[str, tuple[float, float]] = {}
    for workload in first:
        # The second winner stands where the baseline does in the held-out check's own pairing.
        theirs = by_id[workload["id"]]["candidate"]
        pairs = instance_gains(objective, [{"candidate": workload["candidate"], "baseline": theirs}])
        if pairs is None:
            return None
        gains[workload["id"]] = pairs
        means[workload["id"]] = (_mean(workload["candidate"]["items"]), _mean(theirs["items"]))
    # All instances together (each weighs its percent, so a bin on a small instance weighs more), and each
    # workload alone: two rules can differ on one distribution and not on the other.
    return {
        "all": _tested([g for per_workload in gains.values() for g in per_workload]),
        "workloads": {w: {**_tested(g), "means": means[w]} for w, g in gains.items()},
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _tested(gains: list[float]) -> dict:
    return {
        "instances": len(gains),
        "better": sum(1 for g in gains if g > 0),
        "worse": sum(1 for g in gains if g < 0),
        "p_first_better": signed_rank_test(gains)[2],
        "p_second_better": signed_rank_test([-g for g in gains])[2],
    }


def print_pairs(
    objective: Objective, winners: list[tuple[str, list[dict] | None]], where: str = "held out"
) -> None:
    """The first arm's winner against every other arm's, one line each (arms without a winner are said)."""
    (first_arm, first), others = winners[0], winners[1:]
    print(f"\n## {first_arm}'s winner against the other arms', instance by instance ({where})\n")
    for arm, workloads in others:
        if not first or not workloads:
            print(f"{first_arm} vs {arm}: no winner measured held out in {arm if first else first_arm}")
            continue
        c = compare(objective, first, workloads)
        if c is None:
            print(f"{first_arm} vs {arm}: no instance-by-instance pairs to compare")
            continue
        print(f"{first_arm} vs {arm}: {_line(c['all'], first_arm, arm)}")
        for name, w in c["workloads"].items():
            print(
                f"  {name}: {_line(w, first_arm, arm)}; mean {objective.metric}"
                f" {w['means'][0]:.2f} vs {w['means'][1]:.2f}"
            )


def _line(t: dict, first_arm: str, arm: str) -> str:
    return (
        f"{t['instances']} instances, {first_arm} better on {t['better']}, worse on {t['worse']};"
        f" p ({first_arm} better) = {t['p_first_better']:.3g}, p ({arm} better) = {t['p_second_better']:.3g}"
    )


def measured_fresh(component: Component, wasm: bytes) -> list[dict]:
    """The winner's measure on the FRESH workloads, shaped like an evidence record's workloads."""
    instance = Sandbox(wasm, component.limits).instantiate()
    measured = []
    for workload_id, kind, seed, count, n_items in FRESH:
        instances = generate_instances(kind, seed, count, n_items)
        workload = Workload(workload_id, Split.HELDOUT, f"fresh draw, seed {seed}", seed, instances)
        measured.append({"id": workload_id, "candidate": component.measure(instance, workload)})
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path, help="The ablation's store: one directory per arm.")
    parser.add_argument("--component", default="task_allocation")
    parser.add_argument("--fresh", action="store_true", help="Also compare on a fresh draw (FRESH).")
    args = parser.parse_args()
    if args.fresh and args.component != "task_allocation":
        parser.error("--fresh draws task_allocation's instances; it has no generator for other components")
    arms = (
        sorted(p for p in args.store.iterdir() if (p / "engine.sqlite3").is_file())
        if args.store.is_dir()
        else []
    )
    if len(arms) < 2:
        sys.exit(f"{args.store}: expected an ablation's store, a directory per arm (full, shapes, ...)")
    # The full search first, as evolution.py's table orders them.
    arms.sort(key=lambda p: (p.name != "full", p.name))
    component = get_component(args.component)
    winners, fresh = [], []
    for path in arms:
        with Store(path) as store:
            results = store.results(component.name)
            winners.append((path.name, heldout_of(results[-1].evidence) if results else None))
            if args.fresh:
                wasm = store.get_artifact(results[-1].wasm_sha256) if results else None
                fresh.append((path.name, measured_fresh(component, wasm) if wasm else None))
    print_pairs(component.objective, winners)
    if args.fresh:
        print_pairs(component.objective, fresh, "a fresh draw: " + ", ".join(f"{f[0]} {f[3]}" for f in FRESH))


if __name__ == "__main__":
    main()
