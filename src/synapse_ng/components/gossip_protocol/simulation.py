"""The dissemination simulation (version 1 of the package docstring): topologies, then one broadcast.

Deterministic on every machine (``random.Random`` and IEEE arithmetic only), so a workload's figures are
reproducible bit for bit; it asks a ``choose`` callable for every forwarding decision and knows nothing
of modules.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
import sys
from array import array
from dataclasses import dataclass

from .choice import MAX_PEERS

SIMULATION_VERSION = 1
NEAREST = 10  # k: links to the nearest nodes
LONG_LINKS = 3  # L: random long links per node
COVERAGE_TARGET = 0.99

_BIG_ENDIAN_HOST = sys.byteorder == "big"


@dataclass(frozen=True)
class Topology:
    """One generated network. peers[a] lists a's neighbours by increasing id; the other per-node tuples
    are aligned with it. `delivers[a][i]`: whether a send from a to its i-th peer arrives."""

    seed: int
    nodes: int
    peers: tuple[tuple[int, ...], ...]
    latency: tuple[tuple[float, ...], ...]
    reliability: tuple[tuple[float, ...], ...]
    contact_age: tuple[tuple[float, ...], ...]
    delivers: tuple[tuple[bool, ...], ...]
    horizon: float
    # Little-endian f64 bytes of each node's latency and reliability arrays, ready to write.
    latency_bytes: tuple[bytes, ...]
    reliability_bytes: tuple[bytes, ...]


def f64_bytes(values) -> bytes:
    packed = array("d", values)
    if _BIG_ENDIAN_HOST:  # pragma: no cover - wasm memory is little-endian
        packed.byteswap()
    return packed.tobytes()


@functools.lru_cache(maxsize=128)  # every workload's topologies: 112
def generate_topology(
    seed: int, nodes: int, nearest: int = NEAREST, long_links: int = LONG_LINKS
) -> Topology:
    """The topology of the module docstring (steps 1-4), from random.Random(seed)."""
    rng = random.Random(seed)
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(nodes):
        xs.append(rng.random())
        ys.append(rng.random())
    links: list[dict[int, tuple[float, float]]] = [{} for _ in range(nodes)]

    def link(a: int, b: int) -> None:
        if a == b or b in links[a] or len(links[a]) >= MAX_PEERS or len(links[b]) >= MAX_PEERS:
            return
        dx = xs[a] - xs[b]
        dy = ys[a] - ys[b]
        distance = math.sqrt(dx * dx + dy * dy)
        u = rng.random()
        v = rng.random()
        latency = 5.0 + 100.0 * distance + 200.0 * (u * u * u)
        reliability = 0.6 + 0.4 * v
        links[a][b] = links[b][a] = (latency, reliability)

    everyone = range(nodes)
    for a in everyone:
        xa, ya = xs[a], ys[a]
        squared = [(x - xa) * (x - xa) + (y - ya) * (y - ya) for x, y in zip(xs, ys, strict=True)]
        # nsmallest is stable, so equal distances keep the lower index first.
        closest = heapq.nsmallest(nearest + 1, everyone, key=squared.__getitem__)
        for b in [b for b in closest if b != a][:nearest]:
            link(a, b)
    for a in range(nodes):
        for _ in range(long_links):
            link(a, rng.randrange(nodes))

    peers, latency, reliability, contact_age, delivers = [], [], [], [], []
    for a in range(nodes):
        ids = sorted(links[a])
        lat = [links[a][b][0] for b in ids]
        rel = [links[a][b][1] for b in ids]
        ages, fates = [], []
        for r in rel:
            w = rng.random()
            ages.append(1.0 + w * (1000.0 + 4000.0 * (1.0 - r)))
            fates.append(rng.random() < r)
        peers.append(tuple(ids))
        latency.append(tuple(lat))
        reliability.append(tuple(rel))
        contact_age.append(tuple(ages))
        delivers.append(tuple(fates))
    largest = max((max(lat) for lat in latency if lat), default=1.0)
    return Topology(
        seed=seed,
        nodes=nodes,
        peers=tuple(peers),
        latency=tuple(latency),
        reliability=tuple(reliability),
        contact_age=tuple(contact_age),
        delivers=tuple(delivers),
        horizon=nodes * largest,
        latency_bytes=tuple(f64_bytes(lat) for lat in latency),
        reliability_bytes=tuple(f64_bytes(rel) for rel in reliability),
    )


@dataclass(frozen=True)
class SimulationResult:
    t99: float
    complete: bool  # whether ceil(0.99 N) nodes were reached
    coverage: float
    messages: int
    duplicates: int
    decisions: int


def simulate(topology: Topology, fanout: int, choose) -> SimulationResult:
    """Disseminate from node 0. `choose(node, sender_slot)` returns the chosen peer indices of `node`
    (sender_slot: the index in node's peer list of the peer it got the message from, or -1); it is
    called once per node reached, in order of first arrival, and must return a valid choice."""
    n = topology.nodes
    target = -(-99 * n // 100)  # ceil(0.99 n) in integers
    has = [False] * n
    heap: list[tuple[float, int, int, int]] = [(0.0, 0, 0, -1)]
    sequence = 1
    reached = messages = duplicates = decisions = 0
    t99: float | None = None
    peers, latency, delivers = topology.peers, topology.latency, topology.delivers
    while heap:
        t, _, node, sender = heapq.heappop(heap)
        if has[node]:
            duplicates += 1
            continue
        has[node] = True
        reached += 1
        if reached == target:
            t99 = t
        node_peers = peers[node]
        sender_slot = _slot(node_peers, sender)
        chosen = choose(node, sender_slot)
        decisions += 1
        node_latency, node_delivers = latency[node], delivers[node]
        for slot in chosen:
            messages += 1
            if node_delivers[slot]:
                heapq.heappush(heap, (t + node_latency[slot], sequence, node_peers[slot], node))
                sequence += 1
    complete = t99 is not None
    return SimulationResult(
        t99=t99 if t99 is not None else topology.horizon,
        complete=complete,
        coverage=reached / n,
        messages=messages,
        duplicates=duplicates,
        decisions=decisions,
    )


def _slot(node_peers: tuple[int, ...], sender: int) -> int:
    if sender < 0:
        return -1
    # peers are sorted by id: binary search
    lo, hi = 0, len(node_peers)
    while lo < hi:
        mid = (lo + hi) // 2
        if node_peers[mid] < sender:
            lo = mid + 1
        else:
            hi = mid
    return lo
