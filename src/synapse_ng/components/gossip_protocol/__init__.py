"""gossip_protocol: which peers a node forwards a gossip message to (a heuristic component).

The evolvable function sees one node's peer list and picks up to ``fanout`` distinct peers to forward a
message to. Its quality is the speed of a whole broadcast, measured by a seeded dissemination simulation
that runs on the host and asks the module for every forwarding decision.

ABI (every language; MAX_PEERS = 256):

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

Modules: ``choice`` (the baseline's choice in Python, bit for bit, and what a valid choice is),
``simulation`` (topologies and the dissemination), ``generators`` (cases and workloads), ``host`` (the
calls through the ABI, and the module as the simulation's decider) and ``component`` (the Component).
The skeletons are ``skeleton.rs``, ``skeleton.c`` and ``skeleton.wat`` (in WAT, splitmix64 returns the
new state and the number, and ``choose_peers`` also gets ``$scratch``, memory of its own; the baseline
shuffles in the output array and needs none).
"""
