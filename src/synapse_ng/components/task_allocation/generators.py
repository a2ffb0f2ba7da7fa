"""Generated inputs: training instances (our own seeds, never the held-out sets) and correctness cases."""

from __future__ import annotations

import random

from ...errors import UsageError
from ..base import Case, Split, Workload
from .protocol import MAX_CAPACITY, MAX_ITEMS

# Training workloads: our own seeds, never the held-out sets. (id, generator, seed, instances, items).
OR_CAPACITY = 150
WEIBULL_CAPACITY = 100
# Twenty instances each: a search that keeps the best of thousands of candidates finds ones that are
# lucky on a few instances, and a gain must be shown instance by instance (evolution.significance).
TRAINING = (
    ("train_or", "or", 150_001, 20, 500),
    ("train_weibull", "weibull", 150_002, 20, 1000),
)


def _or_item(rng: random.Random) -> int:
    """An item of the OR3 distribution: uniform integers in [20, 100] (capacity 150)."""
    return rng.randint(20, 100)


def _weibull_item(rng: random.Random) -> int:
    """An item of the Weibull 5k distribution: Weibull(scale 45, shape 3), rounded, clipped to [1, 100]."""
    return min(WEIBULL_CAPACITY, max(1, round(rng.weibullvariate(45.0, 3.0))))


def generate_instances(kind: str, seed: int, count: int, n_items: int) -> list[dict]:
    """Training instances from the test sets' distributions, with our own seed (the same on every machine).
    "or": uniform integers in [20, 100], capacity 150. "weibull": Weibull(scale 45, shape 3), rounded,
    clipped to [1, 100], capacity 100."""
    rng = random.Random(seed)
    instances = []
    for index in range(count):
        if kind == "or":
            capacity = OR_CAPACITY
            items = [_or_item(rng) for _ in range(n_items)]
        elif kind == "weibull":
            capacity = WEIBULL_CAPACITY
            items = [_weibull_item(rng) for _ in range(n_items)]
        else:
            raise UsageError(f"unknown instance generator {kind!r}; known: or, weibull")
        instances.append({"id": f"{kind}_{seed}_{index}", "capacity": capacity, "items": items})
    return instances


def training_workloads() -> list[Workload]:
    return [
        Workload(
            workload_id,
            Split.TRAIN,
            f"generated: generate_instances({kind!r}, seed={seed}, count={count}, n_items={n_items})",
            seed,
            generate_instances(kind, seed, count, n_items),
        )
        for workload_id, kind, seed, count, n_items in TRAINING
    ]


def fixed_cases() -> list[Case]:
    """Edge cases first, then two small instances shaped like the workloads."""
    cases = [
        ("empty", 10, []),
        ("one-item", 10, [3]),
        ("one-item-full", 10, [10]),
        ("items-equal-capacity", 10, [10, 10, 10]),
        ("all-fit-in-one-bin", 100, [10, 20, 30, 40]),
        ("capacity-1", 1, [1, 1, 1, 1, 1]),
        ("ties-between-used-bins", 10, [6, 6, 3, 3, 1]),
        ("best-fit-not-first-fit", 10, [5, 7, 3, 2]),
        ("exact-fills", 10, [3, 7, 4, 6, 5, 5, 9, 1]),
        ("descending", 20, [19, 17, 13, 11, 7, 5, 3, 2, 1]),
        ("large-capacity", MAX_CAPACITY, [2**30, 2**30, MAX_CAPACITY, 1, 2**31 - 2**30 - 1]),
        ("or-like-40", OR_CAPACITY, generate_instances("or", 7, 1, 40)[0]["items"]),
        ("weibull-like-60", WEIBULL_CAPACITY, generate_instances("weibull", 7, 1, 60)[0]["items"]),
    ]
    return [Case(case_id, {"capacity": capacity, "items": items}) for case_id, capacity, items in cases]


def random_cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(f"task_allocation/cases/{seed}")
    cases = []
    for index in range(count):
        shape = ("or", "weibull", "small", "wide")[index % 4]
        n = rng.randint(0, 80)
        if shape == "or":
            capacity, items = OR_CAPACITY, [_or_item(rng) for _ in range(n)]
        elif shape == "weibull":
            capacity, items = WEIBULL_CAPACITY, [_weibull_item(rng) for _ in range(n)]
        elif shape == "small":
            capacity = rng.randint(1, 12)
            items = [rng.randint(1, capacity) for _ in range(n)]
        else:
            capacity = rng.randint(1, 10**6)
            items = [rng.randint(1, capacity) for _ in range(n)]
        cases.append(Case(f"random-{seed}-{index}-{shape}", {"capacity": capacity, "items": items}))
    return cases


def scale_cases() -> list[Case]:
    """One instance at the item cap: every call hands `priority` up to 10,000 bins (the empty ones count), so
    a rule whose cost per call grows faster than the bins (a scan of all bins for each bin) shows it here.
    Weibull items in bins of 100, the family with the most bins open. Best fit burns about 7.8e9 of the
    20e9 fuel a call may use (about 0.6 s)."""
    items = generate_instances("weibull", 10_007, 1, MAX_ITEMS)[0]["items"]
    return [Case(f"scale-weibull-{MAX_ITEMS}", {"capacity": WEIBULL_CAPACITY, "items": items})]
