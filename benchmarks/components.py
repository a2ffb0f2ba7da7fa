"""The components' figures, each measured in one run beside what it is compared with.

    .venv/bin/python benchmarks/components.py [--skip-1m] [--only raft] [--raft-block FILE]

1. Bin packing: best fit, first fit and worst fit (all in WASM, through the task_allocation harness) on
   the two FunSearch test sets, beside the published table.
2. raft_consensus: the shipped WASM baseline against the Python reference at 1k, 10k, 100k and 1M votes
   (tallies per second and the ratio); with --raft-block, a candidate tally block (e.g. the evolved one in
   examples/raft_hash_tally_evolved.rs) measured in the same run, its fuel beside the baseline's.
3. The fixed cost of one host→WASM call, with and without writing an input array.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import wasmtime

from synapse_ng.components import Split, get_component
from synapse_ng.components.raft_consensus.generators import workload_input
from synapse_ng.components.raft_consensus.tally import TallyInput, reference_tally
from synapse_ng.evolution import build_baseline, build_candidate
from synapse_ng.evolution.build import BuildFailure
from synapse_ng.wasm.sandbox import WASMTIME_VERSION, Sandbox, SandboxLimits

PUBLISHED = {  # FunSearch, Table 1: excess over the L1 bound
    "first fit": {"or3": 5.74, "weibull_5k": 4.23},
    "best fit": {"or3": 5.37, "weibull_5k": 3.98},
    "FunSearch": {"or3": 3.11, "weibull_5k": 0.68},
}

BLOCKS = {
    "best fit": (
        "fn priority(item: f64, bins: &[f64]) -> Vec<f64> { bins.iter().map(|&r| -(r - item)).collect() }"
    ),
    "first fit": (
        "fn priority(_item: f64, bins: &[f64]) -> Vec<f64> { (0..bins.len()).map(|i| -(i as f64)).collect() }"
    ),
    # Worst fit among the bins already opened (an unused bin is the one at full, i.e. maximal, capacity);
    # a new bin only when no opened bin can take the item. Plain "most room left" would always pick an
    # unused bin under this protocol and put every item in a bin of its own.
    "worst fit": """fn priority(item: f64, bins: &[f64]) -> Vec<f64> {
    let full = bins.iter().cloned().fold(f64::MIN, f64::max);
    bins.iter().map(|&r| if r < full { r - item } else { -1.0e9 }).collect()
}""",
}


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "funsearch_weibull.rs"
BLOCKS["FunSearch Weibull heuristic, ours in Rust"] = EXAMPLE.read_text()


def build(component, block: str) -> bytes:
    built = build_candidate(component, block)
    if isinstance(built, BuildFailure):
        raise SystemExit(f"{block!r} does not build: {built.message}\n{built.log}")
    return built.wasm


def bin_packing() -> None:
    component = get_component("task_allocation")
    workloads = {w.id: w for w in component.workloads(Split.HELDOUT)}
    print("## bin packing on the FunSearch test sets (excess over L1; mean bins in brackets)\n")
    print(f"{'heuristic':<11} {'OR3':>18} {'published':>10} {'Weibull 5k':>20} {'published':>10}")
    PUBLISHED["FunSearch Weibull heuristic, ours in Rust"] = {
        "weibull_5k": PUBLISHED["FunSearch"]["weibull_5k"]
    }
    for name, block in BLOCKS.items():
        wasm = build(component, block)
        row = {}
        for workload_id in ("or3", "weibull_5k"):
            metrics = component.measure(Sandbox(wasm, component.limits).instantiate(), workloads[workload_id])
            row[workload_id] = metrics
        published = PUBLISHED.get(name, {})
        print(
            f"{name[:11]:<11} {row['or3']['excess_pct']:>7.2f} % ({row['or3']['bins']:>7.2f})"
            f" {published.get('or3', '-'):>9}"
            f"{'' if 'or3' not in published else ' %'}"
            f" {row['weibull_5k']['excess_pct']:>7.2f} % ({row['weibull_5k']['bins']:>8.2f})"
            f" {published.get('weibull_5k', '-'):>9}"
            f"{'' if 'weibull_5k' not in published else ' %'}" + ("   <- " + name if len(name) > 11 else "")
        )
    print(
        f"{'FunSearch':<11} {'-':>18} {PUBLISHED['FunSearch']['or3']:>9} % {'-':>20}"
        f" {PUBLISHED['FunSearch']['weibull_5k']:>9} %   <- published, per data set"
    )


def raft(sizes: list[tuple[int, int]], block: str | None = None) -> None:
    component = get_component("raft_consensus")
    modules = {"shipped baseline": build_baseline(component).wasm}
    if block is not None:
        modules["candidate block"] = build(component, block)
    limits = SandboxLimits(fuel=10**12, memory_bytes=component.limits.memory_bytes, timeout_s=600)
    print("\n## raft_consensus: WASM tallies vs the Python reference\n")
    print(
        f"{'module':<17} {'votes':>9} {'voters':>7} {'wasm fuel':>16} {'wasm tallies/s':>15}"
        f" {'python tallies/s':>17} {'wasm / python':>14}"
    )
    fuels: dict[int, dict[str, int]] = {}
    built: dict[int, float] = {}
    for count, voters in sizes:
        tally_input = workload_input(0xBE7C0000 + count, count, voters)
        started = time.perf_counter()
        TallyInput(tally_input.votes, tally_input.quorum, tally_input.num, tally_input.den)
        built[count] = time.perf_counter() - started
        expected = reference_tally(tally_input)
        repeats = 3 if count <= 100_000 else 1
        for label, wasm in modules.items():  # the Python reference timed beside each, in turn
            wasm_times, python_times, fuel = [], [], 0
            for _ in range(repeats):
                instance = Sandbox(wasm, limits).instantiate()
                started = time.perf_counter()
                output = component.call(instance, tally_input)
                wasm_times.append(time.perf_counter() - started)
                fuel = output.fuel
                assert output.value == expected, label
                started = time.perf_counter()
                assert reference_tally(tally_input) == expected
                python_times.append(time.perf_counter() - started)
            fuels.setdefault(count, {})[label] = fuel
            wasm_s, python_s = statistics.median(wasm_times), statistics.median(python_times)
            print(
                f"{label:<17} {count:>9} {voters:>7} {fuel:>16,} {1 / wasm_s:>15.1f} {1 / python_s:>17.1f}"
                f" {python_s / wasm_s:>13.3f}x"
            )
    print("(wasm times include writing the records into linear memory and reading the result back)")
    print(
        "building each input (TallyInput checks every record and packs it as the module reads it, once, "
        "whichever tally runs): "
        + ", ".join(f"{count:,} votes {seconds * 1000:.1f} ms" for count, seconds in built.items())
    )
    if block is not None:
        ratios = ", ".join(
            f"{count:,} votes {f['shipped baseline'] / f['candidate block']:.1f}x"
            for count, f in fuels.items()
        )
        print(f"fuel, shipped baseline / candidate block: {ratios}")


def call_overhead() -> None:
    module = bytes(
        wasmtime.wat2wasm(
            '(module (memory (export "memory") 1 1) (func (export "nop")) '
            '(func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
        )
    )
    instance = Sandbox(module).instantiate()
    for name, action in (
        ("call nop()", lambda: instance.call("nop")),
        ("call add(i32, i32)", lambda: instance.call("add", 1, 2)),
        (
            "write 64 x i32, call add",
            lambda: (instance.memory.write_array(0, range(64), "i32"), instance.call("add", 1, 2)),
        ),
    ):
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(2000):
                action()
            samples.append((time.perf_counter() - started) / 2000)
        print(f"{name:<26} {statistics.median(samples) * 1e6:8.1f} us per call")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--skip-1m", action="store_true", help="Leave out the 1M-vote tally (it takes a while)."
    )
    parser.add_argument("--only", choices=["raft"], help="Run only this part.")
    parser.add_argument(
        "--raft-block", type=Path, help="A tally block (Rust) to measure beside the baseline."
    )
    args = parser.parse_args()
    block = args.raft_block.read_text() if args.raft_block else None
    print(f"# components benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" wasmtime {WASMTIME_VERSION}\n"
    )
    if args.only is None:
        bin_packing()
    sizes = [(1_000, 100), (10_000, 1_000), (100_000, 2_000)] + ([] if args.skip_1m else [(1_000_000, 2_000)])
    raft(sizes, block)
    if args.only is not None:
        return
    print("\n## the fixed cost of one host -> WASM call (sandboxed: fuel, epoch deadline, limits)\n")
    call_overhead()


if __name__ == "__main__":
    main()
