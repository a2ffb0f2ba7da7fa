"""The host side of one ``tally`` call: write the records and the poison after them, call, read back.

Nothing the module reports is trusted: its error codes become messages, and the caller compares the
tally it read back with the reference.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable
from operator import itemgetter

from ...wasm.memory import MemoryAccessError
from ...wasm.sandbox import Instance
from ..base import CaseFailure
from .tally import MAX_WEIGHT, OUTCOMES, POISON_SLOTS, U32_MAX, Tally, TallyInput, Vote, reference_tally

# Negative return codes of the harness's `tally` export.
ERRORS = {
    -1: "the harness refused n (outside 0..=1048576); this is a host error, not the candidate's",
    -2: "the harness refused the threshold (needs 0 < num <= den <= 65535); this is a host error",
    -3: "the harness refused the quorum (negative); this is a host error",
    -4: (
        "tally_votes returned a total outside 0..=n*2^20 (negative, or more weight than the n input records "
        "can carry: does it read records past the first n, or overflow?)"
    ),
    -5: "tally_votes returned a turnout that is not yes + no + abstain",
    -6: "tally_votes returned an outcome outside 0..=2 (0 approved, 1 rejected, 2 no quorum)",
}


FIRST_POISON_VOTER = 0x5EED_0000


def poison_records(votes: tuple[Vote, ...], highest_voter: int | None = None) -> list[Vote]:
    """Records written after the input: new voters (not in the input), big weights, yes and no votes.
    Whatever a tally that reads past its input picks up of these changes yes or no by ~2^20.
    `highest_voter`: the input's largest voter id, when the caller has it (saves a pass over the votes)."""
    if highest_voter is None:
        highest_voter = max(map(itemgetter(0), votes), default=-1)
    start = max(FIRST_POISON_VOTER, highest_voter + 1)
    if start + POISON_SLOTS - 1 <= U32_MAX:  # above every input voter: new without looking them up
        voters: Iterable[int] = range(start, start + POISON_SLOTS)
    else:  # an input voter near the top of u32: the free ids from FIRST_POISON_VOTER on, wrapping to 0
        used = set(map(itemgetter(0), votes))
        every = itertools.chain(range(FIRST_POISON_VOTER, U32_MAX + 1), range(FIRST_POISON_VOTER))
        voters = itertools.islice((voter for voter in every if voter not in used), POISON_SLOTS)
    return [Vote(voter, 7 + index, index % 2, MAX_WEIGHT - index) for index, voter in enumerate(voters)]


def run(instance: Instance, input: TallyInput) -> tuple[Tally, int, float]:
    """(tally, fuel of all calls, wall seconds of all calls)."""
    fuel = 0
    wall = 0.0

    def call(name: str, *args) -> int:
        nonlocal fuel, wall
        result = instance.call(name, *args)
        if result.trap is not None:
            raise CaseFailure(f"trapped: {result.trap}")
        fuel += result.fuel_used or 0
        wall += result.wall_s
        if len(result.values) != 1 or not isinstance(result.values[0], int):
            raise CaseFailure(f"{name} returned {result.values!r}, expected one integer")
        return result.values[0]

    n = len(input.votes)
    # The input packed its records when it checked them (tally.TallyInput); only the poison is packed here.
    # Packing 100k votes here took longer than the Python reference's whole tally.
    poison = list(itertools.chain.from_iterable(poison_records(input.votes, input.highest_voter)))
    records = input.records + struct.pack(f"<{len(poison)}I", *poison)
    records_at = call("records_ptr")
    try:
        instance.memory.write_bytes(records_at, records)
    except MemoryAccessError as error:
        raise CaseFailure(
            f"records_ptr() returned {records_at}, where {n} + {POISON_SLOTS} records do not fit: {error}"
        ) from None
    code = call("tally", n, input.quorum, input.num, input.den)
    result_at = call("result_ptr")
    try:
        yes, no, abstain, turnout = instance.memory.read_array(result_at, 4, "i64")
    except MemoryAccessError as error:
        raise CaseFailure(
            f"result_ptr() returned {result_at}, where 4 x i64 cannot be read: {error}"
        ) from None
    if code < 0:
        what = ERRORS.get(code, f"tally returned the unknown error code {code}")
        raise CaseFailure(
            f"{what} (error {code}); for {input.describe()}: the module wrote yes={yes}, no={no}, "
            f"abstain={abstain}, turnout={turnout}; expected {reference_tally(input).describe()}"
        )
    if code not in OUTCOMES:
        raise CaseFailure(f"tally returned {code}, which is neither an outcome (0, 1, 2) nor an error code")
    return Tally(yes, no, abstain, turnout, code), fuel, wall
