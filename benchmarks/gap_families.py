"""The landscape of two small-gap rules for task_allocation, on the training workloads: how far tuning can
take each family at best, which is what a search started from it can reach.

    .venv/bin/python benchmarks/gap_families.py [--heldout]

Both rules are best fit with a penalty for a bin that would be left with a positive gap below THRESHOLD:
`constant` subtracts PENALTY, `growing` subtracts FACTOR * gap (the space wasted). Each is measured on a
grid of its two constants on the training workloads (the searches' own instances); the best settings of
each family are printed, and with --heldout also their excess on the held-out sets, for reference only
(nothing here chooses by them).

A per-bin rule scores every empty bin alike, and the first empty bin comes before the others, so packing
against the used bins plus one empty bin is the protocol's packing; `check_against_the_protocol` asserts
it on a few instances before the grid runs.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from synapse_ng.components.task_allocation.bounds import l1_bound
from synapse_ng.components.task_allocation.datasets import heldout_workloads
from synapse_ng.components.task_allocation.generators import training_workloads
from synapse_ng.components.task_allocation.protocol import online_pack

Rule = Callable[[float, np.ndarray], np.ndarray]  # (item, gaps of the feasible bins) -> scores


def constant(threshold: float, penalty: float) -> Rule:
    return lambda item, gaps: -gaps - np.where((gaps > 0) & (gaps < threshold), penalty, 0.0)


def growing(threshold: float, factor: float) -> Rule:
    return lambda item, gaps: -gaps - np.where((gaps > 0) & (gaps < threshold), factor * gaps, 0.0)


FAMILIES = {
    "constant": (constant, [5, 10, 20, 30, 40, 50, 60, 80]),
    "growing": (growing, [0.5, 1, 2, 4, 6, 8, 10, 14, 20]),
}
THRESHOLDS = list(range(10, 52, 3))


def bins_used(items: list[int], capacity: int, rule: Rule) -> int:
    remaining = np.empty(len(items) + 1)
    used = 0
    for item in items:
        remaining[used] = capacity  # the first empty bin stands for all of them
        feasible = np.nonzero(remaining[: used + 1] >= item)[0]
        chosen = feasible[int(np.argmax(rule(float(item), remaining[feasible] - item)))]
        remaining[chosen] -= item
        used += chosen == used
    return used


def excess(workloads, rule: Rule) -> dict[str, float]:
    out = {}
    for workload in workloads:
        bins = sum(bins_used(i["items"], i["capacity"], rule) for i in workload.input)
        bound = sum(l1_bound(i["items"], i["capacity"]) for i in workload.input)
        out[workload.id] = 100.0 * (bins - bound) / bound
    return out


def check_against_the_protocol(workloads) -> None:
    rule = growing(25.0, 8.0)

    def priority(item: float, bins: list[float]) -> list[float]:
        return [float(s) for s in rule(item, np.asarray(bins) - item)]

    for workload in workloads:
        for instance in workload.input[:2]:
            items = instance["items"][:300]
            assignment = online_pack(items, instance["capacity"], priority)
            assert len(set(assignment)) == bins_used(items, instance["capacity"], rule), workload.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--heldout", action="store_true", help="also print the best settings' held-out excess"
    )
    parser.add_argument("--top", type=int, default=3, help="best settings printed per family")
    args = parser.parse_args()
    train = training_workloads()
    check_against_the_protocol(train)
    held = heldout_workloads() if args.heldout else []
    print(f"# gap families, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# machine: {platform.machine()}, Python {platform.python_version()}")
    print(
        "# excess over L1 on the training workloads (mean of train_or and train_weibull); best fit for scale"
    )
    base = excess(train, growing(0.0, 0.0))
    print(
        f"best fit   {sum(base.values()) / len(base):6.3f} %  "
        + "  ".join(f"{k} {v:.3f}" for k, v in base.items())
    )
    for family, (make, strengths) in FAMILIES.items():
        rows = []
        for threshold in THRESHOLDS:
            for strength in strengths:
                scores = excess(train, make(threshold, strength))
                rows.append((sum(scores.values()) / len(scores), threshold, strength, scores))
        rows.sort(key=lambda row: row[0])
        for mean, threshold, strength, scores in rows[: args.top]:
            line = f"{family:9s}  {mean:6.3f} %  THRESHOLD {threshold:2d}, {strength:4g}:  "
            line += "  ".join(f"{k} {v:.3f}" for k, v in scores.items())
            if held:
                line += "  | held out " + "  ".join(
                    f"{k} {v:.3f}" for k, v in excess(held, make(threshold, strength)).items()
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
