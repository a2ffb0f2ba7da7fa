"""RaftConsensus: the vote-tally Component (what it declares, and how a call and a workload run)."""

from __future__ import annotations

from typing import Any

from ...models import CodeLanguage
from ...wasm.policy import ExportSpec
from ...wasm.sandbox import Instance, SandboxLimits
from ..base import CallOutput, Case, CaseFailure, Component, ComponentKind, Objective, Split, Workload
from . import generators
from .host import run
from .tally import Tally, TallyInput, reference_tally


class RaftConsensus(Component):
    # Exact: a candidate must return the reference's tally on every case, and wins on fuel alone.
    kind = ComponentKind.EXACT
    name = "raft_consensus"
    aliases = ("consensus", "vote_tally")
    description = (
        "Vote tally closing a governance proposal: per voter the record with the highest sequence number "
        "counts (the last one in input order among equal highest sequences); weighted yes/no/abstain "
        "totals, turnout, and the outcome against an integer quorum and a rational threshold num/den."
    )
    objective = Objective(
        metric="fuel",
        direction="min",
        aggregation="sum",
        description="wasm fuel burnt by the tally over the workload's calls (deterministic); lower is better",
    )
    exports = (
        ExportSpec("records_ptr", (), ("i32",)),
        ExportSpec("tally", ("i32", "i64", "i32", "i32"), ("i32",)),
        ExportSpec("result_ptr", (), ("i32",)),
    )
    languages = (CodeLanguage.RUST, CodeLanguage.C)
    max_memory_pages = 1024  # 64 MiB: 16 MiB of records, the rest for a candidate's own tables
    # Per call. The baseline burns ~1.8 G fuel (Rust; C ~1.6 G) in ~0.15 s on the largest workload
    # (votes_100k): 6 G leaves it a 3x margin and stops anything much slower in well under a second.
    limits = SandboxLimits(fuel=6_000_000_000, memory_bytes=1024 * 65536, timeout_s=20.0)

    def __init__(self) -> None:
        self._workloads: dict[Split, list[Workload]] = {}

    # ------------------------------------------------------------------ program and oracle

    def reference(self, input: TallyInput) -> Tally:
        return reference_tally(input)

    # ------------------------------------------------------------------ cases

    def fixed_cases(self) -> list[Case]:
        return generators.fixed_cases()

    def random_cases(self, seed: int, count: int) -> list[Case]:
        return generators.random_cases(seed, count)

    # ------------------------------------------------------------------ host side of a call

    def call(self, instance: Instance, input: TallyInput) -> CallOutput:
        tally, fuel, _ = run(instance, input)
        return CallOutput(tally, fuel)

    def check_output(self, input: TallyInput, output: Any) -> None:
        expected = self.reference(input)
        if output == expected:
            return
        if not isinstance(output, Tally):
            raise CaseFailure(f"expected {expected.describe()}, got {output!r}")
        wrong = [field for field in Tally._fields if getattr(output, field) != getattr(expected, field)]
        raise CaseFailure(
            f"wrong tally for {input.describe()}: expected {expected.describe()}; got {output.describe()} "
            f"(wrong: {', '.join(wrong)})"
        )

    # ------------------------------------------------------------------ workloads and the objective

    def workloads(self, split: Split) -> list[Workload]:
        if split not in self._workloads:
            self._workloads[split] = generators.workloads(split)
        return list(self._workloads[split])

    def measure(self, instance: Instance, workload: Workload) -> dict[str, Any]:
        input: TallyInput = workload.input
        try:
            tally, fuel, wall = run(instance, input)
            self.check_output(input, tally)
        except CaseFailure as failure:
            raise CaseFailure(f"on workload {workload.id}: {failure}") from None
        return {"fuel": fuel, "wall_s": wall, "votes": len(input.votes)}
