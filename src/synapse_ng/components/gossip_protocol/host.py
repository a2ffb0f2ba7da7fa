"""The host side: the module's buffers, one ``select`` call, and the module as the simulation's decider.

Every address the module gives is checked against its linear memory, every answer is validated, and a
whole workload has a fuel budget so a slow candidate cannot stall an evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...wasm.memory import MemoryAccessError
from ...wasm.sandbox import Instance, SandboxLimits
from ..base import CaseFailure
from .choice import MAX_PEERS, decision_seed, validate_choice
from .simulation import Topology, f64_bytes

# select's error codes (negative return values), shared by every skeleton.
ERR_NEGATIVE_COUNT = -1
ERR_COUNT_OVER_BUFFER = -2
ERR_ARGUMENTS = -3

# Per-call bounds, and a budget for a whole workload so a slow candidate cannot stall an evaluation:
# the baseline burns about 3,400 fuel per decision in Rust and 740 in C; the budget allows about 400,000
# per decision on the largest workload (2,494 decisions).
CALL_LIMITS = SandboxLimits(fuel=50_000_000, timeout_s=2.0)
WORKLOAD_FUEL_BUDGET = 1_000_000_000


@dataclass(frozen=True)
class Pointers:
    latency: int
    reliability: int
    contact_age: int
    output: int


def buffer_pointers(instance: Instance) -> tuple[Pointers, int]:
    """Ask the module where its buffers are and check that each lies inside linear memory."""
    found = {}
    fuel = 0
    for name, width in (
        ("latency_ptr", 8),
        ("reliability_ptr", 8),
        ("contact_age_ptr", 8),
        ("output_ptr", 4),
    ):
        result = instance.call(name)
        if result.trap is not None:
            raise CaseFailure(f"trapped: {result.trap} (in {name})")
        fuel += result.fuel_used or 0
        if len(result.values) != 1 or not isinstance(result.values[0], int):
            raise CaseFailure(f"{name} returned {result.values!r}, expected one i32 address")
        address = result.values[0] & 0xFFFFFFFF
        size = instance.memory.size_bytes
        if address + MAX_PEERS * width > size:
            raise CaseFailure(
                f"{name} returned {address}, but a {MAX_PEERS}-entry buffer there would end past linear "
                f"memory ({size} bytes)"
            )
        found[name] = address
    return (
        Pointers(
            found["latency_ptr"], found["reliability_ptr"], found["contact_age_ptr"], found["output_ptr"]
        ),
        fuel,
    )


def select(instance: Instance, pointers: Pointers, n: int, fanout: int, seed: int) -> tuple[list[int], int]:
    """Call select and read the choice back: (indices, fuel). The choice itself is not validated here."""
    result = instance.call("select", n, fanout, seed)
    if result.trap is not None:
        raise CaseFailure(f"trapped: {result.trap}")
    if len(result.values) != 1 or not isinstance(result.values[0], int):
        raise CaseFailure(f"select returned {result.values!r}, expected one i32 count")
    count = result.values[0]
    if count == ERR_NEGATIVE_COUNT:
        raise CaseFailure(
            f"negative count: choose_peers returned a count below 0 (n={n} peers, fan-out {fanout}); return "
            "how many indices were written to out, 0..fanout"
        )
    if count == ERR_COUNT_OVER_BUFFER:
        raise CaseFailure(
            f"choose_peers returned a count above the {MAX_PEERS}-slot output buffer (n={n} peers, fan-out "
            f"{fanout}); return how many indices were written to out, 0..fanout"
        )
    if count == ERR_ARGUMENTS:
        raise CaseFailure(
            f"select refused its arguments (n={n} peers, fan-out {fanout}): the harness was changed"
        )
    if not 0 <= count <= MAX_PEERS:
        raise CaseFailure(
            f"select returned {count}, which is neither a count in 0..{MAX_PEERS} nor an error code"
        )
    try:
        choice = instance.memory.read_array(pointers.output, count, "i32")
    except MemoryAccessError as error:
        raise CaseFailure(f"could not read the chosen peers back: {error}") from None
    return choice, result.fuel_used or 0


class ModuleDecider:
    """The simulation's `choose`: one select call per decision, every answer checked."""

    def __init__(
        self,
        instance: Instance,
        pointers: Pointers,
        topology: Topology,
        fanout: int,
        where: str,
        fuel: int,
        stream: int = 0,
    ):
        self.stream = stream  # of the decision seeds (choice.decision_seed)
        self.instance = instance
        self.memory = instance.memory
        self.pointers = pointers
        self.topology = topology
        self.fanout = fanout
        self.where = where
        self.fuel = fuel

    def __call__(self, node: int, sender_slot: int) -> list[int]:
        topology, pointers, memory = self.topology, self.pointers, self.memory
        n = len(topology.peers[node])
        ages = list(topology.contact_age[node])
        if sender_slot >= 0:
            ages[sender_slot] = 0.0
        try:
            memory.write_bytes(pointers.latency, topology.latency_bytes[node])
            memory.write_bytes(pointers.reliability, topology.reliability_bytes[node])
            memory.write_bytes(pointers.contact_age, f64_bytes(ages))
        except MemoryAccessError as error:
            raise CaseFailure(f"could not write the peers into the module's memory: {error}") from None
        seed = decision_seed(topology.seed, node, self.stream)
        try:
            choice, used = select(self.instance, pointers, n, self.fanout, seed)
            validate_choice(choice, n, self.fanout)
        except CaseFailure as failure:
            raise CaseFailure(
                f"{failure} [at node {node} of {self.where}: {n} peers, fan-out {self.fanout}]"
            ) from None
        self.fuel += used
        if self.fuel > WORKLOAD_FUEL_BUDGET:
            raise CaseFailure(
                f"used {self.fuel} fuel by node {node} of {self.where}, above the workload budget of "
                f"{WORKLOAD_FUEL_BUDGET} for a whole workload: make choose_peers cheaper (the baseline needs "
                "a few thousand fuel per decision)"
            )
        return choice
