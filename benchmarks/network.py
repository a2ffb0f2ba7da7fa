"""The network benchmark: a local network of real node processes on loopback (default 5).

Measures, in one run:
  - the time from a code upgrade's approval to 100 % rollout (an honest upgrade: the hand-written
    gap-penalty task_allocation block with its evidence; every node re-verifies it before voting),
  - the time from an injected regression (an upgrade that traps in production, approved by the keys'
    holders signing yes themselves after every node refused it) to its rollback on every node,
  - how many signed proposals and votes per second one node accepts over HTTP, side by side on a network
    with the per-member bounds lifted (as before SECURITY.md) and one with the default bounds,
  - the node-level before/after figure of the upgraded component: bins used for the same task batches.

    .venv/bin/python benchmarks/network.py [--nodes 5] [--window 5] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hashlib
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from node_helpers import GAP_PENALTY, TRAPS_ON_77, compiled, honest_upgrade
from synapse_ng.governance import GovernanceRules, proposal_body, vote_body
from synapse_ng.network import LocalNetwork
from synapse_ng.node.envelope import sign_envelope
from synapse_ng.node.identity import Identity


def wait(condition, timeout_s: float, what: str, every: float = 0.05) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if condition():
                return time.monotonic()
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")


# The per-member bounds lifted: what a node accepted before it bounded what one member can make it store.
UNBOUNDED = {
    "member_messages_per_s": 1e9,
    "member_burst": 10**9,
    "max_open_proposals_per_member": 10**9,
    "max_votes_per_voter": 10**9,
}

HEADERS: dict[str, dict] = {}  # url -> the operator credential of that node


def get(url: str, path: str) -> dict:
    return httpx.get(url + path, timeout=30).json()


def propose(url: str, wasm: bytes, evidence: dict, source: str) -> str:
    response = httpx.post(
        url + "/api/proposals/code-upgrade",
        json={
            "component": "task_allocation",
            "wasm_base64": base64.b64encode(wasm).decode(),
            "evidence": evidence,
            "source": source,
        },
        headers=HEADERS[url],
        timeout=60,
    )
    response.raise_for_status()
    return response.json()["id"]


def batches(seed: int, count: int) -> list[tuple[int, list[int]]]:
    rng = random.Random(seed)
    found = []
    for k in range(count):
        if k % 2:
            found.append((150, [rng.randint(20, 100) for _ in range(500)]))
        else:
            found.append((100, [min(100, max(1, round(rng.weibullvariate(45.0, 3.0)))) for _ in range(1000)]))
    return found


def pack_all(url: str, work) -> tuple[int, int, str]:
    bins = bound = 0
    version = ""
    for capacity, items in work:
        result = httpx.post(
            url + "/api/tasks", json={"capacity": capacity, "items": items}, headers=HEADERS[url], timeout=60
        ).json()
        bins += result["bins"]
        bound += result["lower_bound"]
        version = result["version"]
    return bins, bound, version


def rollout(net: LocalNetwork, proposal_id: str, state: str, timeout_s: float) -> float:
    return max(
        wait(
            lambda url=url: get(url, "/api/upgrades")["rollouts"].get(proposal_id, {}).get("state") == state,
            timeout_s,
            f"{state} at {url}",
        )
        for url in net.urls
    )


async def accept_rate(url: str, make, seconds: float, concurrency: int = 8) -> tuple[int, int, float]:
    accepted = refused = 0
    stop_at = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker(slot: int):
            nonlocal accepted, refused
            k = 0
            while time.monotonic() < stop_at:
                response = await client.post(url + "/api/messages", json=make(slot, k))
                k += 1
                if response.status_code == 201:
                    accepted += 1
                else:
                    refused += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(s) for s in range(concurrency)))
    return accepted, refused, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--window", type=float, default=5.0, help="health window of each rollout stage (s)")
    parser.add_argument(
        "--deadline",
        type=float,
        default=60.0,
        help="voting deadline (s): room for every node to rebuild and re-measure",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="duration of each message-rate measurement"
    )
    args = parser.parse_args()

    print(f"# network benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {platform.machine()}, {__import__('os').cpu_count()} cores,"
        f" Python {platform.python_version()}"
    )
    print(
        f"# {args.nodes} node processes on loopback; voting deadline {args.deadline:g} s;"
        f" health window {args.window:g} s per stage\n"
    )
    wasm, evidence = honest_upgrade()
    trapping = compiled(TRAPS_ON_77)
    doctored = copy.deepcopy(evidence)
    doctored["candidate"]["sha256"] = hashlib.sha256(trapping).hexdigest()
    work = batches(7, 6)

    with tempfile.TemporaryDirectory(prefix="synapse-net-bench-") as root:
        overrides = {
            "deadline_s": args.deadline,
            "grace_s": 0.5,
            "anti_entropy_interval_s": 0.5,
            "health_window_s": args.window,
            "immune_interval_s": 5.0,
            "evolve": False,
        }
        net = LocalNetwork(Path(root), args.nodes, overrides=overrides)
        net.prepare()
        HEADERS.update({net.url(i): net.operator_headers(i) for i in range(args.nodes)})
        started = time.monotonic()
        net.start()
        try:
            net.wait_ready()
            print(f"start-up: {time.monotonic() - started:.1f} s until all {args.nodes} nodes answer")
            before = pack_all(net.url(0), work)

            # 1. An honest upgrade: approval -> 100 %.
            proposal_id = propose(net.url(0), wasm, evidence, GAP_PENALTY)
            proposed = time.monotonic()
            approved = wait(
                lambda: get(net.url(0), f"/api/proposals/{proposal_id}")["outcome"]["status"] == "approved",
                args.deadline + 300,
                "approval",
            )
            view = get(net.url(0), f"/api/proposals/{proposal_id}")
            stages = get(net.url(0), "/api/upgrades")["rollouts"][proposal_id]["stages"]
            for url in net.urls:  # traffic on every node during the rollout
                pack_all(url, work[:2])
            done = rollout(net, proposal_id, "completed", 600)
            print(
                f"honest upgrade: {view['outcome']['yes']}/{args.nodes} verified yes votes;"
                f" decided {approved - proposed:.1f} s after the proposal "
                f"(deadline {args.deadline:g} s + grace)"
            )
            print(
                f"  stages {[len(s) for s in stages]}: approval -> 100 % rollout in {done - approved:.1f} s "
                f"({len(stages)} stages x {args.window:g} s window ="
                f" {len(stages) * args.window:g} s of watching)"
            )
            after = pack_all(net.url(0), work)
            print(
                f"  node-level figure, the same {len(work)} task batches on node 0:"
                f" {before[0]} bins before ({before[2]}), "
                f"{after[0]} after ({after[2][:12]}); L2 bound {before[1]};"
                f" excess {100 * (before[0] - before[1]) / before[1]:.2f} % -> "
                f"{100 * (after[0] - after[1]) / after[1]:.2f} %"
            )

            # 2. An injected regression: humans approve a module that traps on items of size 77.
            for url in net.urls:
                httpx.post(
                    url + "/api/upgrades/task_allocation/rollback",
                    json={"reason": "benchmark reset"},
                    headers=HEADERS[url],
                    timeout=30,
                )
            wait(
                lambda: all(
                    get(u, "/api/components")["components"]["task_allocation"]["active"] == "baseline"
                    for u in net.urls
                ),
                60,
                "reset",
            )
            bad = propose(net.url(0), trapping, doctored, TRAPS_ON_77)
            # Honest nodes vote no on it automatically (it fails its own correctness cases); each node's
            # owner then replaces that vote with yes, signed with the node's key: the regression goes live
            # by human error.
            for i in range(args.nodes):
                wait(
                    lambda i=i: any(
                        v["voter"] == net.ids[i] for v in get(net.url(0), f"/api/proposals/{bad}")["votes"]
                    ),
                    300,
                    "auto vote",
                )
                identity = Identity.load_or_create(net.dir(i) / "identity.key")
                body = vote_body(bad, "yes", time.time_ns(), "human override")
                httpx.post(
                    net.url(i) + "/api/messages",
                    json=sign_envelope(identity, "vote", body).to_dict(),
                    timeout=30,
                )
            wait(
                lambda: get(net.url(0), f"/api/proposals/{bad}")["outcome"]["status"] == "approved",
                args.deadline + 120,
                "approval of the regression",
            )
            first_stage = get(net.url(0), "/api/upgrades")["rollouts"][bad]["stages"][0][0]
            first = net.ids.index(first_stage)
            wait(
                lambda: (
                    get(net.url(first), "/api/components")["components"]["task_allocation"]["active"] == bad
                ),
                60,
                "regression live",
            )
            injected = time.monotonic()
            httpx.post(
                net.url(first) + "/api/tasks",
                json={"capacity": 100, "items": [50, 77, 30]},
                headers=HEADERS[net.url(first)],
                timeout=30,
            )
            back = rollout(net, bad, "rolled_back", 300)
            everywhere = max(
                wait(
                    lambda url=url: (
                        get(url, "/api/components")["components"]["task_allocation"]["active"] == "baseline"
                    ),
                    120,
                    "baseline",
                )
                for url in net.urls
            )
            print(
                f"injected regression (traps in production on stage 0): rolled back on every node"
                f" {max(back, everywhere) - injected:.2f} s "
                f"after the first trap (the stage's health window is {args.window:g} s)"
            )
        finally:
            net.stop()

    for label, bounds in (("bounds lifted", UNBOUNDED), ("default bounds", {})):
        with tempfile.TemporaryDirectory(prefix="synapse-net-rate-") as root:
            overrides = {
                "deadline_s": 3600.0,
                "anti_entropy_interval_s": 0.5,
                "immune_interval_s": 5.0,
                "evolve": False,
                **bounds,
            }
            net = LocalNetwork(Path(root), args.nodes, overrides=overrides)
            net.prepare()
            net.start()
            try:
                net.wait_ready()
                message_rates(net, args, label)
            finally:
                net.stop()


def message_rates(net: LocalNetwork, args, label: str) -> None:
    """Signed proposals and votes per second one node (node 1) accepts from its members."""
    # Signed messages per second one node accepts.
    identities = [Identity.load_or_create(net.dir(i) / "identity.key") for i in range(args.nodes)]
    rules = GovernanceRules(deadline_s=3600)

    def make_proposal(slot, k):
        body = proposal_body(
            "config_change",
            f"p{slot}-{k}",
            "",
            {"changes": {"gossip_fanout": 2 + k % 3}},
            rules=rules,
            now=time.time(),
        )
        return sign_envelope(identities[slot % args.nodes], "proposal", body).to_dict()

    targets = []
    for k in range(8):  # votes spread over several proposals, as real traffic is
        envelope = sign_envelope(
            identities[k % args.nodes],
            "proposal",
            proposal_body(
                "config_change",
                f"votes target {k}",
                "",
                {"changes": {"gossip_fanout": 2}},
                rules=rules,
                now=time.time(),
            ),
        )
        httpx.post(net.url(1) + "/api/messages", json=envelope.to_dict(), timeout=30).raise_for_status()
        targets.append(envelope.id)

    def make_vote(slot, k):
        body = vote_body(targets[k % len(targets)], "yes" if k % 2 else "no", time.time_ns() + slot, "")
        return sign_envelope(identities[slot % args.nodes], "vote", body).to_dict()

    for name, make in (("proposals", make_proposal), ("votes", make_vote)):
        accepted, refused, seconds = asyncio.run(accept_rate(net.url(1), make, args.seconds))
        print(
            f"{label:>14}: {name}: {accepted / seconds:.0f} per second accepted by one node"
            f" ({accepted} in {seconds:.1f} s, "
            f"8 concurrent clients from {args.nodes} members, {refused} refused;"
            " each verified, stored and gossiped)"
        )


if __name__ == "__main__":
    main()
