"""What a voter pays to verify a code upgrade: wall time and the re-run worker's peak memory, per component.

    .venv/bin/python benchmarks/verification.py [--runs 2]

For task_allocation (the hand-written gap-penalty block, src/synapse_ng/samples/gap_penalty.rs) and
raft_consensus (a sort-based tally instead of the baseline's quadratic scan), it builds the candidate,
evaluates it the way the engine does (held-out workloads, the default random cases) to get real
evidence, then runs governance.verify.verify_code_upgrade with the default VerifyLimits: hash, static
checks, rebuild from source, the verifier's own 200 random cases with its own seed, the evidence's
cases and workloads re-run bit for bit, the improvement. The first run rebuilds the source (a compiler
run); later runs find the rebuild in the process's cache, so they show the re-run alone.

Peak memory is the worker's own ru_maxrss (it reports it with its answer): the process that the memory
limit (VerifyLimits.memory_bytes, RLIMIT_DATA) applies to. The compiler is a separate process with the
toolchain's own limits.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from synapse_ng.components import Split, get_component
from synapse_ng.evolution import BuiltModule, build_candidate, evaluate
from synapse_ng.governance.verify import VerifyLimits, verify_code_upgrade
from synapse_ng.models import CodeLanguage
from synapse_ng.wasm.sandbox import WASMTIME_VERSION

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "synapse_ng" / "samples"

# raft_consensus: sort the record indices by (voter, seq, position); the last of each voter's run is the
# record that counts. O(n log n) instead of the baseline's O(records x voters).
SORTED_TALLY = """
fn tally_votes(records: &[Record], quorum: i64, num: i64, den: i64) -> Tally {
    let mut order: Vec<u32> = (0..records.len() as u32).collect();
    order.sort_unstable_by_key(|&i| {
        let r = &records[i as usize];
        (((r.voter as u64) << 32) | r.seq as u64, i)
    });
    let mut t = Tally::default();
    for (k, &i) in order.iter().enumerate() {
        let r = &records[i as usize];
        if k + 1 < order.len() && records[order[k + 1] as usize].voter == r.voter {
            continue;
        }
        let w = r.weight as i64;
        match r.choice {
            0 => t.yes += w,
            1 => t.no += w,
            _ => t.abstain += w,
        }
        t.turnout += w;
    }
    t.outcome = if t.turnout < quorum {
        2
    } else if t.yes + t.no > 0 && t.yes * den >= num * (t.yes + t.no) {
        0
    } else {
        1
    };
    t
}
"""

UPGRADES = {
    "task_allocation": (SAMPLES / "gap_penalty.rs").read_text(),
    "raft_consensus": SORTED_TALLY,
}


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=2, help="Verifications per upgrade (the first one rebuilds the source)."
    )
    args = parser.parse_args()
    limits = VerifyLimits()
    print(f"# verification benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" wasmtime {WASMTIME_VERSION}"
    )
    print(f"# limits: {limits.to_dict()}\n")
    rows = []
    for name, source in UPGRADES.items():
        component = get_component(name)
        started = time.monotonic()
        built = build_candidate(component, source, CodeLanguage.RUST)
        assert isinstance(built, BuiltModule), built
        evaluation = evaluate(component, source, CodeLanguage.RUST, Split.HELDOUT, built=built)
        assert evaluation.correct, evaluation.message
        prepared = time.monotonic() - started
        params = {
            "component": name,
            "wasm_sha256": hashlib.sha256(built.wasm).hexdigest(),
            "wasm_size": len(built.wasm),
            "language": "rust",
            "source": source,
            "evidence": evaluation.evidence,
            "improvement_pct": evaluation.improvement_pct,
            "issue": f"{name}:benchmark",
        }
        cases = evaluation.evidence["cases"]
        print(
            f"{name}: module {len(built.wasm)} bytes, improvement {evaluation.improvement_pct:+.3f} % on "
            f"{len(evaluation.workloads)} held-out workloads, evidence cases {cases['total']}"
            f" (random {cases['random']}); "
            f"build + evaluate {prepared:.1f} s"
        )
        for run in range(1, args.runs + 1):
            verdict = verify_code_upgrade(params, built.wasm, limits=limits)
            what = "cold (rebuilds)" if run == 1 else "warm (rebuild cached)"
            print(
                f"  run {run} {what:22s} ok={verdict.ok}  {verdict.seconds:6.2f} s"
                f"  worker peak RSS {mib(verdict.worker_peak_rss_bytes)}"
                f"  own cases {verdict.own_cases_passed}/{verdict.own_cases} (seed {verdict.own_seed})"
                + ("" if verdict.ok else f"  reasons: {verdict.reasons}")
            )
            rows.append((name, run, verdict))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"\n# largest child process of this run (a compiler or a worker): {mib(children)}")
    print("\n| upgrade | verification, cold (s) | verification, warm (s) | worker peak RSS | limit |")
    print("|---|---|---|---|---|")
    for name in UPGRADES:
        runs = [v for n, _, v in rows if n == name]
        warm = f"{runs[1].seconds:.2f}" if len(runs) > 1 else "-"
        peak = max((v.worker_peak_rss_bytes or 0) for v in runs) or None
        print(f"| {name} | {runs[0].seconds:.2f} | {warm} | {mib(peak)} | {mib(limits.memory_bytes)} |")


if __name__ == "__main__":
    main()
