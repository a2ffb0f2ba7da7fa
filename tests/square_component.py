"""A tiny exact component used to test the evaluation machinery itself, independent of the real ones.

sum_squares(values) = sum of v*v. The shipped baseline squares by repeated addition (slow on purpose),
so an honest multiplication is a measurable improvement.
"""

from __future__ import annotations

import random

from synapse_ng.components import (
    CallOutput,
    Case,
    CaseFailure,
    Component,
    ComponentKind,
    Objective,
    Split,
    Workload,
)
from synapse_ng.models import CodeLanguage
from synapse_ng.wasm.policy import ExportSpec
from synapse_ng.wasm.sandbox import Instance, SandboxLimits

MAX_VALUES = 20_000

SKELETON = """
static mut VALUES: [i32; 20000] = [0; 20000];

#[no_mangle]
pub extern "C" fn values_ptr() -> i32 { unsafe { VALUES.as_ptr() as i32 } }

#[no_mangle]
pub extern "C" fn run(n: i32) -> i64 {
    let values = unsafe { &VALUES[..n as usize] };
    sum_squares(values)
}

// EVOLVE-BLOCK-START
fn sum_squares(values: &[i32]) -> i64 {
    let mut total: i64 = 0;
    for &v in values {
        let mut square: i64 = 0;
        for _ in 0..v { square += v as i64; }
        total += square;
    }
    total
}
// EVOLVE-BLOCK-END
"""


class SquareSum(Component):
    name = "square_sum"
    aliases = ("squares",)
    kind = ComponentKind.EXACT
    description = "sum of squares of small non-negative integers (a test fixture)"
    objective = Objective("fuel", "min", "sum", "total fuel over the workload")
    exports = (ExportSpec("values_ptr", (), ("i32",)), ExportSpec("run", ("i32",), ("i64",)))
    languages = (CodeLanguage.RUST,)
    limits = SandboxLimits(fuel=500_000_000, timeout_s=20)

    def skeleton(self, language: CodeLanguage) -> str:
        return SKELETON

    def reference(self, input):
        return sum(v * v for v in input)

    def fixed_cases(self) -> list[Case]:
        return [Case("empty", []), Case("one", [7]), Case("zeros", [0, 0, 0]), Case("max", [100] * 50)]

    def random_cases(self, seed: int, count: int) -> list[Case]:
        rng = random.Random(seed)
        sizes = [rng.randint(1, 50) for _ in range(count)] + [5000]  # the last one is big
        return [
            Case(f"random-{i}", [rng.randint(0, 100) for _ in range(size)]) for i, size in enumerate(sizes)
        ]

    def call(self, instance: Instance, input) -> CallOutput:
        if len(input) > MAX_VALUES:
            raise CaseFailure("too many values")
        pointer = instance.call("values_ptr").values[0]
        instance.memory.write_array(pointer, input, "i32")
        result = instance.call("run", len(input))
        if not result.ok:
            raise CaseFailure(f"trapped: {result.trap}")
        return CallOutput(result.values[0], result.fuel_used)

    def workloads(self, split: Split) -> list[Workload]:
        seeds = {Split.TRAIN: (1, 2), Split.HELDOUT: (101, 102)}[split]
        out = []
        for seed in seeds:
            rng = random.Random(seed)
            values = [rng.randint(0, 100) for _ in range(10_000)]
            out.append(
                Workload(
                    f"{split.value}-{seed}",
                    split,
                    f"random.Random({seed}), 10000 values in [0, 100]",
                    seed,
                    values,
                )
            )
        return out

    def measure(self, instance: Instance, workload: Workload) -> dict:
        output = self.call(instance, workload.input)
        if output.value != self.reference(workload.input):
            raise CaseFailure(f"wrong total on {workload.id}")
        return {"fuel": output.fuel, "wall_s": 0.0}
