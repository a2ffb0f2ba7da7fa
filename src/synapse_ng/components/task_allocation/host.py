"""The host side of one ``pack`` call: write the items, call, read the assignment back, trust nothing.

The module's own count of bins is checked against the count from its assignment, and its negative error
codes are turned into messages a model can act on.
"""

from __future__ import annotations

from ...wasm.memory import MemoryAccessError
from ...wasm.sandbox import Instance
from ..base import CaseFailure
from .protocol import ERR_ARGUMENTS, ERR_NO_BIN, ERR_NOT_FINITE, ERR_SCORE_COUNT, validate_packing


def pack(instance: Instance, items: list[int], capacity: int, timed: bool = False):
    """Write the items, call pack, read the assignment back and validate it.
    Returns (assignment, bins used, fuel) or, when timed, (assignment, bins used, (fuel, wall_s))."""
    fuel = 0
    wall = 0.0

    def invoke(name: str, *args) -> int:
        nonlocal fuel, wall
        result = instance.call(name, *args)
        wall += result.wall_s
        if result.trap is not None:
            where = "" if name == "pack" else f" in {name}"
            hint = ""
            if result.trap.code == "unreachable":
                hint = (
                    " (in Rust this is a panic: an index out of bounds, an unwrap of None, a failed "
                    "assert...)"
                )
            raise CaseFailure(f"trapped{where}: {result.trap}{hint}")
        fuel += result.fuel_used or 0
        if len(result.values) != 1 or not isinstance(result.values[0], int):
            raise CaseFailure(f"{name} returned {result.values!r}, expected one i32")
        return result.values[0]

    n = len(items)
    memory = instance.memory
    items_at = invoke("items_ptr")
    try:
        memory.write_array(items_at, items, "i32")
    except MemoryAccessError as error:
        raise CaseFailure(f"items_ptr() = {items_at} does not point at room for {n} items: {error}") from None
    reported = invoke("pack", n, capacity)
    if reported < 0:
        raise CaseFailure(describe_error(instance, invoke, reported, n, capacity))
    assignment_at = invoke("assignment_ptr")
    try:
        assignment = memory.read_array(assignment_at, n, "i32")
    except MemoryAccessError as error:
        raise CaseFailure(
            f"assignment_ptr() = {assignment_at} does not point at {n} bin indices: {error}"
        ) from None
    used = validate_packing(items, capacity, assignment)
    if reported != used:
        raise CaseFailure(
            f"pack reports {reported} bins but packed into {used}: the bins used are counted from the "
            f"assignment, and the count must agree"
        )
    return assignment, used, ((fuel, wall) if timed else fuel)


def describe_error(instance: Instance, invoke, code: int, n: int, capacity: int) -> str:
    detail_at = invoke("error_ptr")
    try:
        a, b, c, d = instance.memory.read_array(detail_at, 4, "i32")
    except MemoryAccessError:
        return f"pack failed with error code {code}, and error_ptr() = {detail_at} points outside memory"
    if code == ERR_SCORE_COUNT:
        return (
            f"pack failed ({code}): at item {a}, priority returned {c} scores for the {b} bins offered; "
            f"it must return exactly one score per bin, in the order given"
        )
    if code == ERR_NOT_FINITE:
        what = {0: "a NaN", 1: "an infinite (+inf)", 2: "an infinite (-inf)"}.get(d, "a non-finite")
        return (
            f"pack failed ({code}): at item {a}, priority returned {what} score for bin {b} of the {c} "
            "offered; every score must be a finite number (in C, a score left unwritten stays NaN)"
        )
    if code == ERR_NO_BIN:
        return (
            f"pack failed ({code}): no bin could hold item {a}; with as many bins as items that only happens "
            f"when the program overwrites the harness's bin state"
        )
    if code == ERR_ARGUMENTS:
        return (
            f"pack failed ({code}): it refused its arguments (n_items={n}, capacity={capacity}), "
            f"which are valid"
        )
    return f"pack failed with unknown error code {code}"
