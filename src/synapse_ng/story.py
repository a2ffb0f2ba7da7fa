"""The main job: the whole story on a local network, told as it happens.

    run_story(nodes=5, minutes=30, provider="local", ...) -> exit code

1. start N node processes on loopback (embedded defaults unless a provider is given);
2. measure a fixed set of task batches on node 0 (the "before" figure), then keep every node busy with
   task batches (Weibull and uniform item sizes), which their task_allocation packs;
3. the immune system sees the packing's excess over the L2 lower bound (Martello and Toth) stay above its
   target for three checks in a row, and the node designated for that issue runs the Evolutionary Engine;
4. the winning candidate, measured on held-out workloads, becomes a code_upgrade proposal; every node
   re-verifies it (hash, static checks, correctness, evidence re-run) and votes;
5. once approved it rolls out in stages, each watched for a health window;
6. the same task batches on node 0 again: the "after" figure.

Everything printed comes from the nodes' HTTP APIs; nothing is computed on the side. Exit code 0 only
when a measured improvement is live on every node. The node processes are watched throughout: if one
exits (a crash, a kill) or reports that its engine failed, the story says which node, how it ended and
the last lines of its log, stops the others and exits with EXIT_NODE_DIED (10).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.console import Console

from .errors import EXIT_NODE_DIED
from .network import LocalNetwork, NodeFailed

ISSUE_KEY = "task_allocation:allocation_excess_pct"
POLL_S = 1.0
MODEL_TIMEOUT_S = 120.0  # one model call, with the machine's cores to itself (NodeConfig.llm_timeout_s)


LOAD_SEED = 7


def weibull_batch(rng: random.Random) -> tuple[int, list[int]]:
    """A batch of the Weibull family (Weibull(45, 3) items, bins of 100): (capacity, items)."""
    return 100, [min(100, max(1, round(rng.weibullvariate(45.0, 3.0)))) for _ in range(1000)]


def uniform_batch(rng: random.Random) -> tuple[int, list[int]]:
    """A batch of the uniform family (items 20 to 100, bins of 150), the OR-Library's shape."""
    return 150, [rng.randint(20, 100) for _ in range(500)]


def load_batches(nodes: int, seed: int = LOAD_SEED) -> Iterator[tuple[int, int, list[int]]]:
    """The story's production traffic, endless: (node index, capacity, items), half of each family. The
    same seed gives the same stream, so a run's live inputs can be drawn again to study a rollout."""
    rng = random.Random(seed)
    while True:
        index = rng.randrange(nodes)
        capacity, items = weibull_batch(rng) if rng.random() < 0.5 else uniform_batch(rng)
        yield index, capacity, items


def probe_batches(seed: int = 20261126) -> list[tuple[int, list[int]]]:
    rng = random.Random(seed)
    weibull = [weibull_batch(rng) for _ in range(3)]
    uniform = [uniform_batch(rng) for _ in range(3)]
    return weibull + uniform


def _pack(url: str, batches, headers: dict) -> dict:
    bins = bound = 0
    versions = set()
    for capacity, items in batches:
        result = httpx.post(
            url + "/api/tasks", json={"capacity": capacity, "items": items}, headers=headers, timeout=120
        ).json()
        bins += result["bins"]
        bound += result["lower_bound"]
        versions.add(result["version"])
    return {
        "bins": bins,
        "bound": bound,
        "excess_pct": 100.0 * (bins - bound) / bound,
        "versions": sorted(versions),
    }


class _Load(threading.Thread):
    """Keeps every node packing task batches, as production traffic would."""

    def __init__(self, urls: list[str], headers: list[dict]):
        super().__init__(daemon=True)
        self.urls = urls
        self.headers = headers  # each node's operator credential: tasks are the operator's to hand in
        self.stop = threading.Event()
        self.batches = 0

    def run(self) -> None:
        batches = load_batches(len(self.urls))
        with httpx.Client(timeout=120) as client:
            while not self.stop.is_set():
                index, capacity, items = next(batches)
                url = self.urls[index]
                try:
                    client.post(
                        url + "/api/tasks",
                        json={"capacity": capacity, "items": items},
                        headers=self.headers[index],
                    )
                    self.batches += 1
                except httpx.HTTPError:
                    pass
                self.stop.wait(0.5)


def run_story(
    *,
    nodes: int = 5,
    minutes: float = 30.0,
    provider: str = "local",
    model: str = "",
    endpoint: str = "",
    data: str | None = None,
    deadline_s: float = 120.0,
    window_s: float = 5.0,
    islands: int = 1,
    console: Console | None = None,
) -> int:
    console = console or Console(soft_wrap=True)
    say = console.print
    root = Path(data) if data else Path(tempfile.mkdtemp(prefix="synapse-story-"))
    overrides = {
        "deadline_s": deadline_s,
        "grace_s": 1.0,
        "anti_entropy_interval_s": 1.0,
        "immune_interval_s": 3.0,
        "chronic_after": 3,
        "health_window_s": window_s,
        "evolve": True,
        "llm_provider": provider,
        "llm_model": model,
        "llm_endpoint": endpoint,
        "evolve_minutes": minutes,
        "evolve_samples": 100_000,
        "targets": {"allocation_excess_pct": 3.0},
        "islands": islands,
        "llm_timeout_s": model_timeout_s(islands),
    }
    net = LocalNetwork(root, nodes, overrides=overrides)
    started = time.monotonic()
    model_text = "/" + model if model else " (embedded Qwen2.5-Coder-1.5B)" if provider == "local" else ""
    say(
        f"[bold]synapse-ng[/bold]: a network that rewrites its own hot code. {nodes} nodes, model: "
        f"{provider}{model_text}; data in {root}"
    )
    net.prepare()
    net.start()
    load = _Load(net.urls, [net.operator_headers(i) for i in range(net.count)])
    try:
        return _tell(net, say, started, minutes, load)
    except (NodeFailed, httpx.HTTPError) as error:
        failure = error if isinstance(error, NodeFailed) else _dead_node(net)
        if failure is None:  # every node is alive: the request itself failed
            say(f"\n[red]a node did not answer: {error}; see the node logs in {root}[/red]")
            return 1
        say(f"\n[red bold]{failure}[/red bold]\n[red]stopping the other nodes[/red]")
        return EXIT_NODE_DIED
    finally:
        if load.is_alive():
            load.stop.set()
            load.join(10)
        net.stop()
        say(f"network stopped (state kept in {root})")


def model_timeout_s(islands: int, cores: int | None = None) -> float:
    """One model call's limit when `islands` embedded models share this machine's cores: each writes
    about islands/cores times slower (a run of three islands on two cores timed out at 120 s three
    times in a row, BENCHMARKS.md), so the limit grows by that factor, rounded up."""
    cores = cores or os.cpu_count() or 1
    return MODEL_TIMEOUT_S * max(1, math.ceil(islands / cores))


def _tell_islands(net: LocalNetwork, say, proposal: dict) -> None:
    """From a collaborative evolution: each island's migrants and the winner they agreed on."""
    evolution = proposal["params"].get("evolution")
    if not evolution:
        return
    contributors = [net.ids.index(n) for n in proposal["params"].get("contributors", []) if n in net.ids]
    say(f"   found by islands {contributors} (the winner's first) of evolution {evolution[:12]}")
    for i, url in enumerate(net.urls):
        runs = [
            r
            for r in httpx.get(url + "/api/islands", timeout=30).json()["runs"]
            if r["evolution"] == evolution
        ]
        for run in runs:
            winner = run["winner"]
            say(
                f"   node {i}, island {run['rank'] + 1} of {len(run['islands'])}: sent {run['sent']}, "
                f"admitted {run['admitted']}, dropped {run['dropped'] + run['misreport']} migrants; winner "
                + (
                    f"{winner['source_hash'][:12]} from node {net.ids.index(winner['author'])}"
                    if winner
                    else "none"
                )
            )


def _dead_node(net: LocalNetwork) -> NodeFailed | None:
    """A node that exited explains a broken connection better than the connection does."""
    try:
        net.check()
    except NodeFailed as failure:
        return failure
    return None


def _tell(net: LocalNetwork, say, started: float, minutes: float, load: _Load) -> int:
    """The story from the moment the nodes run; the caller stops the network whatever happens."""
    net.wait_ready(timeout_s=300)
    for i, url in enumerate(net.urls):
        say(f"  node {i}  {url}  id {net.ids[i][:12]}")
    say(f"  watch it in a browser: {net.url(0)}/ (every node serves its dashboard at its address)")
    batches = probe_batches()
    before = _pack(net.url(0), batches, net.operator_headers(0))
    say(
        "\n[bold]1. load[/bold]: every node packs task batches with its live task_allocation "
        f"({before['versions'][0]}, best fit). "
        f"Probe on node 0: {before['bins']} bins for an L2 lower bound of {before['bound']}: "
        f"{before['excess_pct']:.2f} % over the bound "
        f"(the immune system's target: at most 3.00 %)"
    )
    load.start()
    proposal_id = _follow(net, say, started, minutes)
    if proposal_id is None:
        return 1
    after = _pack(net.url(0), batches, net.operator_headers(0))
    say(
        f"\n[bold]6. after[/bold]: the same probe on node 0: {after['bins']} bins "
        f"({after['excess_pct']:.2f} % over the bound) "
        f"with {', '.join(v[:12] for v in after['versions'])}, "
        f"against {before['bins']} bins ({before['excess_pct']:.2f} %) before: "
        f"{before['bins'] - after['bins']} bins fewer for the same tasks"
    )
    live = [
        httpx.get(u + "/api/components", timeout=30).json()["components"]["task_allocation"]["active"]
        for u in net.urls
    ]
    everywhere = all(v == proposal_id for v in live)
    say(
        f"   live on {sum(v == proposal_id for v in live)}/{len(net.urls)} nodes; "
        f"load served: {load.batches} batches; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    if everywhere and after["bins"] < before["bins"]:
        say("[green]a measured improvement, evolved by the network itself, is deployed on every node[/green]")
        return 0
    say("[red]the upgrade is not live everywhere, or it did not improve the probe[/red]")
    return 1


def _follow(net: LocalNetwork, say, started: float, minutes: float):
    """Print what the nodes report until the upgrade is live everywhere; the proposal id, or None."""
    urls = net.urls
    seen_actions: set[tuple] = set()
    evolving_since = None
    last_progress = 0.0
    proposal = None
    votes_seen: set[str] = set()
    decided = False
    switched: set[int] = set()
    last_excess = None
    budget_s = minutes * 60 + 600  # the engine's budget, then voting and rollout
    while time.monotonic() - started < budget_s:
        time.sleep(POLL_S)
        net.check()  # a node that exited ends the story here, with its log, not a connection error later
        health = [httpx.get(u + "/api/health", timeout=30).json() for u in urls]
        excess = health[0]["measurements"].get("allocation_excess_pct")
        streak = health[0]["consecutive"].get("allocation_excess_pct", 0)
        if (
            excess is not None
            and proposal is None
            and evolving_since is None
            and (last_excess is None or time.monotonic() - last_excess > 5)
        ):
            say(
                f"   immune system on node 0: allocation excess {excess:.2f} % (target <= 3.00 %), "
                f"{streak} check(s) in a row"
            )
            last_excess = time.monotonic()
        for i, h in enumerate(health):
            if h.get("evolving") and evolving_since is None:
                evolving_since = time.monotonic()
                say(
                    f"\n[bold]2. immune system[/bold]: chronic issue on {ISSUE_KEY} -> node {i} "
                    "(designated for it) runs the "
                    f"Evolutionary Engine on task_allocation"
                )
            if h.get("evolving") and evolving_since is not None and time.monotonic() - last_progress > 30:
                stats = httpx.get(urls[i] + "/api/evolutionary-engine/stats", timeout=30).json()
                best = stats.get("best_training_improvement_pct")
                best_text = f", best on the training workloads {best:+.2f} %" if best is not None else ""
                say(
                    f"   evolving for {time.monotonic() - evolving_since:.0f} s: "
                    f"{stats['total_generations']} candidates, "
                    f"{stats['successful_compilations']} compiled{best_text}"
                )
                last_progress = time.monotonic()
            for action in httpx.get(urls[i] + "/api/health/issues", timeout=30).json()["actions"]:
                key = (i, action["at"], action["kind"])
                if key in seen_actions or action["kind"] in (
                    "skipped_open_proposal",
                    "reported",
                    "skipped_in_progress",
                ):
                    continue
                seen_actions.add(key)
                if action["kind"] == "evolve_error":
                    net.check_engines()  # raises NodeFailed with the node's log
                say(f"   node {i}: {action['kind']} for {action['issue_key']}: {action['detail']}")
                if action["kind"] == "evolve_failed":
                    evolving_since = None
        if proposal is None:
            upgrades = [
                p
                for p in httpx.get(urls[0] + "/api/proposals", timeout=30).json()["proposals"]
                if p["type"] == "code_upgrade"
            ]
            if upgrades:
                proposal = httpx.get(urls[0] + f"/api/proposals/{upgrades[0]['id']}", timeout=30).json()
                evidence = proposal["params"]["evidence"]
                say(
                    f"\n[bold]3. proposal[/bold] {proposal['id'][:12]} "
                    f"by node {net.ids.index(proposal['author'])}: code_upgrade of "
                    f"task_allocation, {proposal['params']['wasm_size']} bytes, "
                    f"SHA-256 {proposal['params']['wasm_sha256'][:16]}, claimed "
                    f"held-out improvement {proposal['params']['improvement_pct']:.3f} %"
                )
                for w in evidence["workloads"]:
                    say(
                        f"   {w['id']:<11} best fit {w['baseline']['bins']:.2f} bins, "
                        f"candidate {w['candidate']['bins']:.2f} bins"
                    )
                _tell_islands(net, say, proposal)
                say(
                    "   every node now re-verifies it: "
                    "hash, static checks, correctness suite, evidence re-run"
                )
            continue
        view = httpx.get(urls[0] + f"/api/proposals/{proposal['id']}", timeout=30).json()
        for vote in view["votes"]:
            if vote["voter"] not in votes_seen:
                votes_seen.add(vote["voter"])
                say(
                    f"   vote from node {net.ids.index(vote['voter'])}: "
                    f"{vote['choice']} ({vote['reason'][:110]})"
                )
        if view["outcome"]["status"] in ("open", "closing"):
            continue
        if not decided:
            decided = True
            o = view["outcome"]
            say(
                f"\n[bold]4. governance[/bold]: {o['status']} "
                f"({o['yes']} yes, {o['no']} no of {len(urls)}; threshold "
                f"{o['threshold'][0]}/{o['threshold'][1]}), tallied by each node's live raft_consensus"
            )
            if o["status"] != "approved":
                say("[red]the network did not approve the upgrade[/red]")
                return None
            stages = httpx.get(urls[0] + "/api/upgrades", timeout=30).json()["rollouts"][proposal["id"]][
                "stages"
            ]
            say(
                f"[bold]5. rollout[/bold] in {len(stages)} stages of {[len(s) for s in stages]} node(s), "
                "each watched for its health window"
            )
        for i, url in enumerate(urls):
            active = httpx.get(url + "/api/components", timeout=30).json()["components"]["task_allocation"][
                "active"
            ]
            if active == proposal["id"] and i not in switched:
                switched.add(i)
                say(f"   node {i} switched to {proposal['id'][:12]} ({len(switched)}/{len(urls)})")
        states = [
            httpx.get(u + "/api/upgrades", timeout=30).json()["rollouts"].get(proposal["id"], {}).get("state")
            for u in urls
        ]
        if all(s == "completed" for s in states):
            say("   rollout completed on every node")
            return proposal["id"]
        if any(s == "rolled_back" for s in states):
            say("[red]   the upgrade was rolled back[/red]")
            return None
    say(
        f"[red]no upgrade went live within {budget_s / 60:.0f} minutes[/red]; "
        f"see each node's log in {net.root}"
    )
    return None
