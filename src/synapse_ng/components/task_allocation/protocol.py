"""The protocol in plain Python: the reference the module is judged against.

``online_pack`` is the protocol's loop (see the package docstring), ``best_fit_priority`` the baseline
the skeletons ship, ``validate_packing`` what counts as a valid answer, and ``unpack_input`` the shape
of one instance. The constants are the limits every skeleton shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...errors import UsageError
from ..base import CaseFailure

MAX_ITEMS = 10_000
MAX_CAPACITY = 2**31 - 1

# pack's error codes (negative return values), shared by every skeleton.
ERR_ARGUMENTS = -1
ERR_SCORE_COUNT = -2
ERR_NOT_FINITE = -3
ERR_NO_BIN = -4


Priority = Callable[[float, list[float]], Sequence[float]]


def best_fit_priority(item: float, bins: list[float]) -> list[float]:
    """FunSearch's best fit: the tightest bin wins."""
    return [-(remaining - item) for remaining in bins]


def first_fit_priority(item: float, bins: list[float]) -> list[float]:
    """First fit: the first bin that holds the item wins (earlier bins score higher)."""
    return [-float(k) for k in range(len(bins))]


def online_pack(items: Sequence[int], capacity: int, priority: Priority = best_fit_priority) -> list[int]:
    """The protocol as a plain Python loop: the chosen bin of every item. O(items²): for small inputs."""
    remaining = [float(capacity)] * len(items)
    assignment = []
    for size in items:
        item = float(size)
        feasible = [j for j, free in enumerate(remaining) if free >= item]
        scores = list(priority(item, [remaining[j] for j in feasible]))
        if len(scores) != len(feasible):
            raise ValueError(f"priority returned {len(scores)} scores for {len(feasible)} bins")
        best = max(range(len(scores)), key=lambda k: (scores[k], -k))  # first on ties
        remaining[feasible[best]] -= item
        assignment.append(feasible[best])
    return assignment


def validate_packing(items: Sequence[int], capacity: int, assignment: Any) -> int:
    """Raise CaseFailure unless `assignment` places every item in one existing bin with no bin over
    capacity; returns the number of bins used, recounted from the assignment."""
    n = len(items)
    if not isinstance(assignment, (list, tuple)):
        raise CaseFailure(f"the output must be a list of {n} bin indices, got {type(assignment).__name__}")
    if len(assignment) != n:
        raise CaseFailure(
            f"the output has {len(assignment)} bin indices for {n} items; every item must be placed exactly "
            "once"
        )
    loads: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for i, bin_index in enumerate(assignment):
        if isinstance(bin_index, bool) or not isinstance(bin_index, int) or not 0 <= bin_index < n:
            raise CaseFailure(
                f"item {i} is not placed: assignment[{i}] = {bin_index!r} is not a bin "
                f"(an instance of {n} items has bins 0..{n - 1})"
            )
        loads[bin_index] = loads.get(bin_index, 0) + items[i]
        members.setdefault(bin_index, []).append(i)
    for bin_index in sorted(loads):
        if loads[bin_index] > capacity:
            held = members[bin_index]
            shown = ", ".join(str(i) for i in held[:10]) + (
                f", ... ({len(held)} items)" if len(held) > 10 else ""
            )
            raise CaseFailure(
                f"bin {bin_index} is over capacity: it holds items {shown} of total size {loads[bin_index]}, "
                f"above the capacity {capacity}"
            )
    return len(loads)


def unpack_input(input: Any) -> tuple[list[int], int]:
    """Items and capacity of a case or instance; a malformed one is a host bug (UsageError)."""
    if not isinstance(input, dict) or "capacity" not in input or "items" not in input:
        raise UsageError(
            f"a task_allocation input must be {{'capacity': int, 'items': [int, ...]}}, got {input!r:.200}"
        )
    capacity, items = input["capacity"], list(input["items"])
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise UsageError(
            f"task_allocation capacity must be an integer in 1..{MAX_CAPACITY}, got {capacity!r}"
        )
    if len(items) > MAX_ITEMS:
        raise UsageError(f"task_allocation instances hold at most {MAX_ITEMS} items, got {len(items)}")
    for position, size in enumerate(items):
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= capacity:
            raise UsageError(
                f"task_allocation item {position} is {size!r}; sizes must be integers in 1..capacity "
                f"({capacity})"
            )
    return items, capacity
