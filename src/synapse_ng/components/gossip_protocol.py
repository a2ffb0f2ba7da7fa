"""gossip_protocol: which peers a node forwards a gossip message to (a heuristic component).

The evolvable function sees one node's peer list and picks up to ``fanout`` distinct peers to forward a
message to. Its quality is the speed of a whole broadcast, measured by a seeded dissemination simulation
that runs on the host and asks the module for every forwarding decision.

ABI (both languages; MAX_PEERS = 256):

- ``latency_ptr() -> i32``: MAX_PEERS f64, the link latency to each peer in ms;
- ``reliability_ptr() -> i32``: MAX_PEERS f64, the probability that a message sent to the peer arrives;
- ``contact_age_ptr() -> i32``: MAX_PEERS f64, ms since this node last heard from the peer;
- ``output_ptr() -> i32``: MAX_PEERS i32, where the module writes the chosen peer indices;
- ``select(n_peers, fanout, seed: i64) -> i32``: the host has written the first n_peers entries of the
  three input arrays; the module writes its choices at the start of the output array and returns how
  many it chose, or a negative error code: -1 the selection returned a negative count, -2 it returned a
  count larger than the MAX_PEERS-slot output buffer, -3 bad arguments (n_peers outside 0..MAX_PEERS or
  fanout outside 0..MAX_PEERS; the host never sends those). The seed (a u64 passed as i64) is fixed per
  decision, so randomised strategies are reproducible.

A valid answer is a list of distinct peer indices in 0..n_peers-1, at most ``fanout`` of them (fewer,
even none, is valid and merely scores badly). The host checks every answer; nothing the module says
about its answer is trusted.

The simulation (version 1; deterministic: Python's ``random.Random`` and IEEE +, -, *, /, sqrt only, so
every machine computes the same figures bit for bit):

Topology, from ``random.Random(topology_seed)``:
  1. N nodes at uniform random points in the unit square (x then y, node by node).
  2. Links are undirected. For each node a in order, links to its k = 10 nearest other nodes (by squared
     distance, ties by lower index); then for each node a in order, L = 3 long links, each to
     ``randrange(N)`` (a draw that hits a itself or an existing link adds nothing). A link is not added
     when either end already has MAX_PEERS peers.
  3. When a link is created it draws u then v: latency = 5 + 100 * distance + 200 * u**3 ms (a base
     cost, distance, and a heavy-tailed jitter: most links are fast, some are slow), reliability =
     0.6 + 0.4 * v. Both directions share latency and reliability.
  4. Then for each node in order, for each of its peers in increasing node id (the order of its peer
     list): the contact age draws w: age = 1 + w * (1000 + 4000 * (1 - reliability)) ms (unreliable
     peers tend to have been heard from less recently), then the delivery outcome draws z: the link in
     that direction delivers iff z < reliability. A node forwards once, so each directed link carries
     at most one message: drawing its fate up front is the same as drawing at send time, and gives
     every candidate the same network conditions (common random numbers).

Dissemination, with fan-out F:
  - the message appears at node 0 at t = 0. Events (time, sequence number, receiver, sender) sit in a
    heap ordered by time, then sequence number (assigned when a send is scheduled);
  - when a node receives the message for the first time it asks the module once: the inputs are its
    peer list's latency, reliability and contact age, except that the peer it just received the
    message from has contact age 0 (it was just heard from; node 0 has no such peer), fan-out F, and
    seed = splitmix64 output for state (topology_seed << 32) ^ node (one step: state + golden gamma,
    then the finaliser);
  - every chosen peer is sent the message (counted in ``messages``); a delivering link schedules its
    arrival at t + latency; a message that arrives at a node that already has it counts as a duplicate
    and is not forwarded again;
  - the simulation runs until no event is left. ``t99`` is the arrival time that brings the number of
    nodes holding the message to ceil(0.99 N); if that never happens, t99 = the horizon N x (largest
    link latency in the topology), more than any completed broadcast can take (no first arrival needs
    more than N - 1 hops), and the topology counts as incomplete.

Metrics of a workload (several topologies): mean t99 (the objective, lower is better), mean messages
sent, mean coverage (fraction of nodes reached), mean duplicates, the fraction of incomplete
topologies, the number of decisions, total fuel over every call (pointer getters included), wall time.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
import sys
import time
from array import array
from dataclasses import dataclass
from typing import Any

from ..models import CodeLanguage
from ..wasm.inspect import ExportSpec
from ..wasm.memory import MemoryAccessError
from ..wasm.sandbox import Instance, SandboxLimits
from .base import (
    CallOutput,
    Case,
    CaseFailure,
    Component,
    ComponentKind,
    Objective,
    Split,
    Workload,
)

MAX_PEERS = 256

# select's error codes (negative return values), shared by both skeletons.
ERR_NEGATIVE_COUNT = -1
ERR_COUNT_OVER_BUFFER = -2
ERR_ARGUMENTS = -3

SIMULATION_VERSION = 1
NEAREST = 10  # k: links to the nearest nodes
LONG_LINKS = 3  # L: random long links per node
COVERAGE_TARGET = 0.99

# Per-call bounds, and a budget for a whole workload so a slow candidate cannot stall an evaluation:
# the baseline burns about 3,400 fuel per decision in Rust and 740 in C; the budget allows about 400,000
# per decision on the largest workload (2,494 decisions).
CALL_LIMITS = SandboxLimits(fuel=50_000_000, timeout_s=2.0)
WORKLOAD_FUEL_BUDGET = 1_000_000_000

_M64 = (1 << 64) - 1
_BIG_ENDIAN_HOST = sys.byteorder == "big"


# ====================================================================================== skeletons

RUST_SKELETON = r"""// gossip_protocol: choose the peers a node forwards a gossip message to.
//
// Fixed harness, except the EVOLVE block. When a node first receives a message it forwards it once, to
// the peers `choose_peers` picks. The host writes the node's n peers (latency ms, delivery probability,
// ms since last contact; the peer the message just came from has contact age 0) into the static arrays
// and calls select(n, fanout, seed). The chosen peer indices go to the output array; select returns how
// many. The host checks them: distinct, each in 0..n-1, at most fanout. Quality is the time until 99 %
// of the network holds the message (lower is better), in a simulation where each send arrives after the
// link's latency with the link's reliability as probability.

const MAX_PEERS: usize = 256;

static mut LATENCY: [f64; MAX_PEERS] = [0.0; MAX_PEERS];
static mut RELIABILITY: [f64; MAX_PEERS] = [0.0; MAX_PEERS];
static mut CONTACT_AGE: [f64; MAX_PEERS] = [0.0; MAX_PEERS];
static mut OUTPUT: [i32; MAX_PEERS] = [0; MAX_PEERS];

// EVOLVE-BLOCK-START
/// splitmix64: a small, good 64-bit generator (advances the state, returns the next number).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Chooses up to `fanout` distinct peers among the n = latency.len() peers (the three slices have the
/// same length): writes their indices (0..n-1) to out[0..count] and returns count (0..=fanout).
/// latency[i]: ms for a message to reach peer i; reliability[i]: probability that it arrives at all;
/// contact_age[i]: ms since we last heard from peer i (0 for the peer we just got the message from).
/// `seed` is fixed per decision: use it for any randomness. `out` has MAX_PEERS slots.
/// Baseline: `fanout` peers uniformly at random (a partial Fisher-Yates shuffle driven by splitmix64).
fn choose_peers(latency: &[f64], reliability: &[f64], contact_age: &[f64], fanout: usize, seed: u64, out: &mut [i32]) -> i32 {
    let _ = (reliability, contact_age);
    let n = latency.len();
    let k = if fanout < n { fanout } else { n };
    let mut order = [0i32; MAX_PEERS];
    for i in 0..n {
        order[i] = i as i32;
    }
    let mut state = seed;
    for i in 0..k {
        let j = i + (splitmix64(&mut state) % ((n - i) as u64)) as usize;
        order.swap(i, j);
        out[i] = order[i];
    }
    k as i32
}
// EVOLVE-BLOCK-END

#[no_mangle]
pub extern "C" fn latency_ptr() -> i32 {
    unsafe { LATENCY.as_ptr() as i32 }
}

#[no_mangle]
pub extern "C" fn reliability_ptr() -> i32 {
    unsafe { RELIABILITY.as_ptr() as i32 }
}

#[no_mangle]
pub extern "C" fn contact_age_ptr() -> i32 {
    unsafe { CONTACT_AGE.as_ptr() as i32 }
}

#[no_mangle]
pub extern "C" fn output_ptr() -> i32 {
    unsafe { OUTPUT.as_ptr() as i32 }
}

/// Returns the number of peers chosen, or -1 (negative count), -2 (count beyond the output buffer),
/// -3 (bad arguments).
#[no_mangle]
pub extern "C" fn select(n_peers: i32, fanout: i32, seed: i64) -> i32 {
    if n_peers < 0 || n_peers as usize > MAX_PEERS || fanout < 0 || fanout as usize > MAX_PEERS {
        return -3;
    }
    let n = n_peers as usize;
    let count = unsafe {
        choose_peers(&LATENCY[..n], &RELIABILITY[..n], &CONTACT_AGE[..n], fanout as usize, seed as u64, &mut OUTPUT[..])
    };
    if count < 0 {
        return -1;
    }
    if count as usize > MAX_PEERS {
        return -2;
    }
    count
}
"""

C_SKELETON = r"""// gossip_protocol: choose the peers a node forwards a gossip message to.
//
// Fixed harness, except the EVOLVE block. When a node first receives a message it forwards it once, to
// the peers `choose_peers` picks. The host writes the node's n peers (latency ms, delivery probability,
// ms since last contact; the peer the message just came from has contact age 0) into the static arrays
// and calls select(n, fanout, seed). The chosen peer indices go to the output array; select returns how
// many. The host checks them: distinct, each in 0..n-1, at most fanout. Quality is the time until 99 %
// of the network holds the message (lower is better), in a simulation where each send arrives after the
// link's latency with the link's reliability as probability.
// Freestanding C: no libc; only <stdint.h> <stddef.h> <stdbool.h> <float.h> <limits.h>.

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <float.h>
#include <limits.h>

#define MAX_PEERS 256

static double LATENCY[MAX_PEERS];
static double RELIABILITY[MAX_PEERS];
static double CONTACT_AGE[MAX_PEERS];
static int32_t OUTPUT[MAX_PEERS];

// EVOLVE-BLOCK-START
// splitmix64: a small, good 64-bit generator (advances the state, returns the next number).
static uint64_t splitmix64(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Chooses up to `fanout` distinct peers among the n peers: writes their indices (0..n-1) to
// out[0..count) and returns count (0..fanout).
// latency[i]: ms for a message to reach peer i; reliability[i]: probability that it arrives at all;
// contact_age[i]: ms since we last heard from peer i (0 for the peer we just got the message from).
// `seed` is fixed per decision: use it for any randomness. `out` has MAX_PEERS slots.
// Baseline: `fanout` peers uniformly at random (a partial Fisher-Yates shuffle driven by splitmix64).
static int32_t choose_peers(const double *latency, const double *reliability, const double *contact_age,
                            int32_t n, int32_t fanout, uint64_t seed, int32_t *out) {
    (void)latency;
    (void)reliability;
    (void)contact_age;
    int32_t k = fanout < n ? fanout : n;
    int32_t order[MAX_PEERS];
    for (int32_t i = 0; i < n; i++) {
        order[i] = i;
    }
    uint64_t state = seed;
    for (int32_t i = 0; i < k; i++) {
        int32_t j = i + (int32_t)(splitmix64(&state) % (uint64_t)(n - i));
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
        out[i] = order[i];
    }
    return k;
}
// EVOLVE-BLOCK-END

__attribute__((export_name("latency_ptr"))) int32_t latency_ptr(void) { return (int32_t)(uintptr_t)LATENCY; }

__attribute__((export_name("reliability_ptr"))) int32_t reliability_ptr(void) { return (int32_t)(uintptr_t)RELIABILITY; }

__attribute__((export_name("contact_age_ptr"))) int32_t contact_age_ptr(void) { return (int32_t)(uintptr_t)CONTACT_AGE; }

__attribute__((export_name("output_ptr"))) int32_t output_ptr(void) { return (int32_t)(uintptr_t)OUTPUT; }

// Returns the number of peers chosen, or -1 (negative count), -2 (count beyond the output buffer),
// -3 (bad arguments).
__attribute__((export_name("select"))) int32_t select(int32_t n_peers, int32_t fanout, int64_t seed) {
    if (n_peers < 0 || n_peers > MAX_PEERS || fanout < 0 || fanout > MAX_PEERS) {
        return -3;
    }
    int32_t count = choose_peers(LATENCY, RELIABILITY, CONTACT_AGE, n_peers, fanout, (uint64_t)seed, OUTPUT);
    if (count < 0) {
        return -1;
    }
    if (count > MAX_PEERS) {
        return -2;
    }
    return count;
}
"""

SKELETONS = {CodeLanguage.RUST: RUST_SKELETON, CodeLanguage.C: C_SKELETON}


# ====================================================================================== the baseline in Python


def splitmix64(state: int) -> tuple[int, int]:
    """One splitmix64 step: (new state, output), exactly as in the skeletons."""
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def baseline_choice(n: int, fanout: int, seed: int) -> list[int]:
    """The skeletons' baseline selection, bit for bit: a partial Fisher-Yates shuffle."""
    k = min(fanout, n)
    order = list(range(n))
    state = seed & _M64
    out = []
    for i in range(k):
        state, r = splitmix64(state)
        j = i + r % (n - i)
        order[i], order[j] = order[j], order[i]
        out.append(order[i])
    return out


def decision_seed(topology_seed: int, node: int) -> int:
    return splitmix64(((topology_seed << 32) ^ node) & _M64)[1]


def validate_choice(choice: list[int], n_peers: int, fanout: int) -> None:
    """Raise CaseFailure unless choice is at most `fanout` distinct indices in 0..n_peers-1."""
    if len(choice) > fanout:
        raise CaseFailure(
            f"{_peers(len(choice))} chosen with fan-out {fanout}: choose at most fanout peers (returned indices "
            f"{_show_list(choice)})"
        )
    seen: set[int] = set()
    for slot, index in enumerate(choice):
        if not 0 <= index < n_peers:
            valid = f"valid indices are 0..{n_peers - 1}" if n_peers else "there are no peers, so choose none"
            raise CaseFailure(f"index {index} out of range for {_peers(n_peers)} (output slot {slot}): {valid}")
        if index in seen:
            raise CaseFailure(
                f"duplicate index {index} (output slots {choice.index(index)} and {slot}): each peer may be chosen once"
            )
        seen.add(index)


def _peers(count: int) -> str:
    return f"{count} peer" if count == 1 else f"{count} peers"


def _show_list(values: list[int], limit: int = 20) -> str:
    if len(values) <= limit:
        return repr(values)
    return repr(values[:limit])[:-1] + f", ... ({len(values)} in all)]"


# ====================================================================================== topologies and simulation


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


def _f64_bytes(values) -> bytes:
    packed = array("d", values)
    if _BIG_ENDIAN_HOST:  # pragma: no cover - wasm memory is little-endian
        packed.byteswap()
    return packed.tobytes()


@functools.lru_cache(maxsize=64)
def generate_topology(seed: int, nodes: int, nearest: int = NEAREST, long_links: int = LONG_LINKS) -> Topology:
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
        squared = [(x - xa) * (x - xa) + (y - ya) * (y - ya) for x, y in zip(xs, ys)]
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
        latency_bytes=tuple(_f64_bytes(lat) for lat in latency),
        reliability_bytes=tuple(_f64_bytes(rel) for rel in reliability),
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
        t99=t99 if complete else topology.horizon,
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


# ====================================================================================== workloads


@dataclass(frozen=True)
class MeshSpec:
    """A workload: `topologies` networks of `nodes` nodes, seeds seed, seed+1, ...; fan-out `fanout`."""

    nodes: int
    topologies: int
    seed: int
    fanout: int
    nearest: int = NEAREST
    long_links: int = LONG_LINKS

    @property
    def topology_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.topologies)]


# (id, split, nodes, topologies, first seed, fanout)
WORKLOADS = (
    ("train_100", Split.TRAIN, 100, 10, 100_000, 7),
    ("train_200", Split.TRAIN, 200, 6, 200_000, 6),
    ("mesh_200", Split.HELDOUT, 200, 8, 7_200_000, 7),
    ("mesh_500", Split.HELDOUT, 500, 5, 7_500_000, 7),
)


# ====================================================================================== the component


class GossipProtocol(Component):
    name = "gossip_protocol"
    aliases = ("peer_discovery", "message_queue")
    kind = ComponentKind.HEURISTIC
    description = (
        "Fan-out peer selection for gossip: when a node first receives a message it forwards it once to up to "
        "`fanout` distinct peers chosen by choose_peers from each peer's link latency (ms), reliability "
        "(delivery probability) and contact age (ms since last heard; 0 for the peer the message came from). "
        "Scored by a seeded dissemination simulation over random geometric networks (10 nearest neighbours "
        "plus 3 random long links per node; latency = 5 + 100 x distance + heavy-tailed jitter; reliability "
        "0.6-1.0): the time until 99 % of nodes hold the message, averaged over topologies; lower is better. "
        "A broadcast that never reaches 99 % scores a huge penalty, so coverage matters as much as speed."
    )
    objective = Objective(
        metric="t99",
        direction="min",
        aggregation="mean",
        description="mean over topologies of the time (ms) until 99 % of nodes hold the message; penalty "
        "N x largest latency when 99 % is never reached",
    )
    exports = (
        ExportSpec("latency_ptr", (), ("i32",)),
        ExportSpec("reliability_ptr", (), ("i32",)),
        ExportSpec("contact_age_ptr", (), ("i32",)),
        ExportSpec("output_ptr", (), ("i32",)),
        ExportSpec("select", ("i32", "i32", "i64"), ("i32",)),
    )
    languages = (CodeLanguage.RUST, CodeLanguage.C)
    limits = CALL_LIMITS

    # ------------------------------------------------------------------ skeletons and reference

    def skeleton(self, language: CodeLanguage) -> str:
        try:
            return SKELETONS[language]
        except KeyError:
            supported = ", ".join(lang.value for lang in SKELETONS)
            raise ValueError(f"gossip_protocol has no {language.value} skeleton; supported: {supported}") from None

    def reference(self, input: Any) -> list[int]:
        """The baseline's choice for a case (the oracle the shipped skeletons must match bit for bit)."""
        latency, _, _, fanout, seed = _unpack_case(input)
        return baseline_choice(len(latency), fanout, seed)

    def check_output(self, input: Any, output: Any) -> None:
        """Validity only: a heuristic may choose any distinct, existing peers, at most fanout of them."""
        latency, _, _, fanout, _ = _unpack_case(input)
        if not isinstance(output, list) or not all(isinstance(i, int) for i in output):
            raise CaseFailure(f"expected a list of peer indices, got {output!r:.200}")
        validate_choice(output, len(latency), fanout)

    # ------------------------------------------------------------------ cases

    def fixed_cases(self) -> list[Case]:
        rng = random.Random(20_240_601)

        def case(id: str, n: int, fanout: int, seed: int, sender: int | None = None) -> Case:
            return Case(id, _random_peers(rng, n, fanout, seed, sender))

        return [
            case("no_peers", 0, 3, 1),
            case("fanout_zero", 10, 0, 2),
            case("one_peer", 1, 3, 3, sender=0),
            case("fewer_peers_than_fanout", 2, 7, 4),
            case("peers_equal_fanout", 7, 7, 5, sender=3),
            case("typical_node", 17, 7, 6, sender=11),
            case("seed_all_ones", 12, 4, _M64, sender=0),
            case("seed_zero", 12, 4, 0),
            case("max_peers", MAX_PEERS, 7, 7, sender=MAX_PEERS - 1),
            case("max_peers_full_fanout", MAX_PEERS, MAX_PEERS, 8, sender=100),
        ]

    def random_cases(self, seed: int, count: int) -> list[Case]:
        rng = random.Random(seed)
        cases = []
        for index in range(count):
            shape = rng.random()
            if shape < 0.7:
                n = rng.randint(0, 40)
                fanout = rng.randint(0, 12)
            elif shape < 0.9:
                n = rng.randint(0, MAX_PEERS)
                fanout = rng.randint(0, min(MAX_PEERS, n + 4))
            else:
                n = rng.randint(0, 8)
                fanout = rng.randint(0, 10)
            sender = rng.randrange(n) if n and rng.random() < 0.8 else None
            cases.append(Case(f"random_{seed}_{index}", _random_peers(rng, n, fanout, rng.getrandbits(64), sender)))
        return cases

    # ------------------------------------------------------------------ host calls

    def call(self, instance: Instance, input: Any) -> CallOutput:
        latency, reliability, contact_age, fanout, seed = _unpack_case(input)
        pointers, fuel = _pointers(instance)
        try:
            memory = instance.memory
            memory.write_array(pointers.latency, latency, "f64")
            memory.write_array(pointers.reliability, reliability, "f64")
            memory.write_array(pointers.contact_age, contact_age, "f64")
        except MemoryAccessError as error:
            raise CaseFailure(f"could not write the peers into the module's memory: {error}") from None
        choice, used = _select(instance, pointers, len(latency), fanout, seed)
        return CallOutput(choice, fuel + used)

    # ------------------------------------------------------------------ workloads and measurement

    def workloads(self, split: Split) -> list[Workload]:
        found = []
        for id, workload_split, nodes, topologies, seed, fanout in WORKLOADS:
            if workload_split is not split:
                continue
            spec = MeshSpec(nodes=nodes, topologies=topologies, seed=seed, fanout=fanout)
            origin = (
                f"generated by gossip simulation v{SIMULATION_VERSION}: {topologies} topologies of {nodes} nodes "
                f"({NEAREST} nearest + {LONG_LINKS} long links each), fan-out {fanout}, topology seeds "
                f"{seed}..{seed + topologies - 1}"
            )
            found.append(Workload(id=id, split=split, origin=origin, seed=seed, input=spec))
        return found

    def measure(self, instance: Instance, workload: Workload) -> dict[str, float]:
        spec = workload.input
        if not isinstance(spec, MeshSpec):
            raise TypeError(f"gossip_protocol workloads carry a MeshSpec, not {type(spec).__name__}")
        # Networks are generated (or found in the cache) before the clock starts: wall_s is the module's time.
        topologies = [generate_topology(seed, spec.nodes, spec.nearest, spec.long_links) for seed in spec.topology_seeds]
        started = time.perf_counter()
        pointers, fuel = _pointers(instance)
        totals = {"t99": 0.0, "messages": 0.0, "coverage": 0.0, "duplicates": 0.0}
        incomplete = decisions = 0
        for number, (topology_seed, topology) in enumerate(zip(spec.topology_seeds, topologies)):
            where = f"{workload.id} topology {number} (seed {topology_seed})"
            decider = _ModuleDecider(instance, pointers, topology, spec.fanout, where, fuel)
            result = simulate(topology, spec.fanout, decider)
            fuel = decider.fuel
            totals["t99"] += result.t99
            totals["messages"] += result.messages
            totals["coverage"] += result.coverage
            totals["duplicates"] += result.duplicates
            incomplete += 0 if result.complete else 1
            decisions += result.decisions
        count = spec.topologies
        return {
            "t99": totals["t99"] / count,
            "messages": totals["messages"] / count,
            "coverage": totals["coverage"] / count,
            "duplicates": totals["duplicates"] / count,
            "incomplete": incomplete / count,
            "decisions": decisions,
            "fuel": fuel,
            "wall_s": time.perf_counter() - started,
        }


# ====================================================================================== host side of a call


@dataclass(frozen=True)
class _Pointers:
    latency: int
    reliability: int
    contact_age: int
    output: int


def _pointers(instance: Instance) -> tuple[_Pointers, int]:
    """Ask the module where its buffers are and check that each lies inside linear memory."""
    found = {}
    fuel = 0
    for name, width in (("latency_ptr", 8), ("reliability_ptr", 8), ("contact_age_ptr", 8), ("output_ptr", 4)):
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
                f"{name} returned {address}, but a {MAX_PEERS}-entry buffer there would end past linear memory "
                f"({size} bytes)"
            )
        found[name] = address
    return (
        _Pointers(found["latency_ptr"], found["reliability_ptr"], found["contact_age_ptr"], found["output_ptr"]),
        fuel,
    )


def _select(instance: Instance, pointers: _Pointers, n: int, fanout: int, seed: int) -> tuple[list[int], int]:
    """Call select and read the choice back: (indices, fuel). The choice itself is not validated here."""
    result = instance.call("select", n, fanout, seed)
    if result.trap is not None:
        raise CaseFailure(f"trapped: {result.trap}")
    if len(result.values) != 1 or not isinstance(result.values[0], int):
        raise CaseFailure(f"select returned {result.values!r}, expected one i32 count")
    count = result.values[0]
    if count == ERR_NEGATIVE_COUNT:
        raise CaseFailure(
            f"negative count: choose_peers returned a count below 0 (n={n} peers, fan-out {fanout}); return how "
            f"many indices were written to out, 0..fanout"
        )
    if count == ERR_COUNT_OVER_BUFFER:
        raise CaseFailure(
            f"choose_peers returned a count above the {MAX_PEERS}-slot output buffer (n={n} peers, fan-out "
            f"{fanout}); return how many indices were written to out, 0..fanout"
        )
    if count == ERR_ARGUMENTS:
        raise CaseFailure(f"select refused its arguments (n={n} peers, fan-out {fanout}): the harness was changed")
    if not 0 <= count <= MAX_PEERS:
        raise CaseFailure(f"select returned {count}, which is neither a count in 0..{MAX_PEERS} nor an error code")
    try:
        choice = instance.memory.read_array(pointers.output, count, "i32")
    except MemoryAccessError as error:
        raise CaseFailure(f"could not read the chosen peers back: {error}") from None
    return choice, result.fuel_used or 0


class _ModuleDecider:
    """The simulation's `choose`: one select call per decision, every answer checked."""

    def __init__(self, instance: Instance, pointers: _Pointers, topology: Topology, fanout: int, where: str, fuel: int):
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
            memory.write_bytes(pointers.contact_age, _f64_bytes(ages))
        except MemoryAccessError as error:
            raise CaseFailure(f"could not write the peers into the module's memory: {error}") from None
        seed = decision_seed(topology.seed, node)
        try:
            choice, used = _select(self.instance, pointers, n, self.fanout, seed)
            validate_choice(choice, n, self.fanout)
        except CaseFailure as failure:
            raise CaseFailure(f"{failure} [at node {node} of {self.where}: {n} peers, fan-out {self.fanout}]") from None
        self.fuel += used
        if self.fuel > WORKLOAD_FUEL_BUDGET:
            raise CaseFailure(
                f"used {self.fuel} fuel by node {node} of {self.where}, above the workload budget of "
                f"{WORKLOAD_FUEL_BUDGET} for a whole workload: make choose_peers cheaper (the baseline needs a few "
                f"thousand fuel per decision)"
            )
        return choice


# ====================================================================================== cases


def _random_peers(rng: random.Random, n: int, fanout: int, seed: int, sender: int | None) -> dict:
    latency = [5.0 + 395.0 * rng.random() for _ in range(n)]
    reliability = [rng.random() for _ in range(n)]
    contact_age = [1.0 + 5000.0 * rng.random() for _ in range(n)]
    if n:
        reliability[rng.randrange(n)] = 1.0
    if sender is not None:
        contact_age[sender] = 0.0
    return {"latency": latency, "reliability": reliability, "contact_age": contact_age, "fanout": fanout, "seed": seed}


def _unpack_case(input: Any) -> tuple[list[float], list[float], list[float], int, int]:
    """A case's fields, checked: these come from us, so a bad one is a bug of the host (ValueError)."""
    try:
        latency = list(input["latency"])
        reliability = list(input["reliability"])
        contact_age = list(input["contact_age"])
        fanout = int(input["fanout"])
        seed = int(input["seed"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"a gossip_protocol case is a dict with latency, reliability, contact_age, fanout, seed: {error}") from None
    n = len(latency)
    if not (len(reliability) == len(contact_age) == n) or n > MAX_PEERS:
        raise ValueError(f"a gossip_protocol case needs three arrays of one length, at most {MAX_PEERS}")
    if not 0 <= fanout <= MAX_PEERS or not 0 <= seed <= _M64:
        raise ValueError(f"fan-out must be in 0..{MAX_PEERS} and the seed a u64, got {fanout} and {seed}")
    return latency, reliability, contact_age, fanout, seed
