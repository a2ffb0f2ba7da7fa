"""Why did a rollout judge an upgrade as it did? Replays the main job's live traffic against a node's
stored task_allocation upgrades, away from the network.

    .venv/bin/python benchmarks/rollout_shadow.py NODE_DIR [--batches 3000] [--window 20]

NODE_DIR is one node's directory from a story run (`/tmp/synapse-story-*/node2`): its `node.sqlite3`
keeps every version it activated and their WASM. The story's traffic is seeded (`story.load_batches`), so
the batches this node was sent are drawn again (the first --batches of the whole stream, this node's
share). Each upgrade is shadowed against best fit, as the rollout does for a first upgrade (it compares
with the previous version), and the script prints per family
the mean excess over the L2 bound and how many batches each side wins, then the judged objective on every
window of --window consecutive batches: the rollout's health check sees one such window (the node's
recent production inputs) and rolls back when the upgrade is worse by more than the tolerance.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import sys
from itertools import islice
from pathlib import Path

from synapse_ng.components import get_component
from synapse_ng.evolution.build import build_baseline
from synapse_ng.node.runtime import BASELINE, RECENT_INPUTS, ComponentRuntime
from synapse_ng.story import load_batches

NODES = 5  # the story's default network


def _upgrades(database: Path) -> list[tuple[str, str, bytes]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT DISTINCT version, sha256 FROM versions WHERE component = 'task_allocation' "
            "AND event = 'activated' ORDER BY seq"
        ).fetchall()
        found = []
        for version, sha in rows:
            wasm = db.execute("SELECT wasm FROM artifacts WHERE sha256 = ?", (sha,)).fetchone()
            if wasm is None:
                print(f"version {version[:12]}: artifact {sha[:12]} is not stored; skipped")
                continue
            found.append((version, sha, wasm[0]))
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("node_dir", type=Path)
    parser.add_argument("--batches", type=int, default=3000, help="how much of the whole stream to draw")
    parser.add_argument("--window", type=int, default=RECENT_INPUTS, help="batches the rollout judges")
    args = parser.parse_args(argv)
    database = args.node_dir / "node.sqlite3"
    index = re.fullmatch(r"node(\d+)", args.node_dir.resolve().name)
    if not database.is_file() or index is None:
        print(f"{args.node_dir} is not a story node's directory (nodeN with a node.sqlite3 in it)")
        return 2
    node = int(index.group(1))
    upgrades = _upgrades(database)
    if not upgrades:
        print(f"node {node} never activated a task_allocation upgrade: nothing to replay")
        return 1
    component = get_component("task_allocation")
    baseline = build_baseline(component)
    sent = [
        {"capacity": capacity, "items": items}
        for to, capacity, items in islice(load_batches(NODES), args.batches)
        if to == node
    ]
    print(f"node {node}: {len(sent)} of the stream's first {args.batches} batches were sent to it")
    for version, sha, wasm in upgrades:
        runtime = ComponentRuntime(component, baseline.wasm, baseline.sha256)
        runtime.activate(version, wasm, sha)
        pairs = [
            (runtime.shadow(BASELINE, [batch]).objective, runtime.shadow(version, [batch]).objective)
            for batch in sent
        ]
        print(f"\nupgrade {version[:12]} (sha256 {sha[:12]}) against best fit, excess over the L2 bound:")
        for family, capacity in (("Weibull(45, 3), bins of 100", 100), ("uniform 20-100, bins of 150", 150)):
            mine = [p for p, batch in zip(pairs, sent, strict=True) if batch["capacity"] == capacity]
            before = statistics.mean(b for b, _ in mine)
            after = statistics.mean(a for _, a in mine)
            print(
                f"  {family}: {len(mine)} batches, {before:.3f} % -> {after:.3f} % "
                f"({100 * (after - before) / before:+.2f} %), better on {sum(a < b for b, a in mine)}, "
                f"worse on {sum(a > b for b, a in mine)}"
            )
        changes = []
        for start in range(len(pairs) - args.window + 1):
            window = pairs[start : start + args.window]
            before = statistics.mean(b for b, _ in window)
            changes.append(100 * (statistics.mean(a for _, a in window) - before) / before)
        if changes:
            print(
                f"  every window of {args.window} consecutive batches ({len(changes)}): the judged "
                f"objective changes by {min(changes):+.2f} % at best, {statistics.median(changes):+.2f} % "
                f"in the median, {max(changes):+.2f} % at worst"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
