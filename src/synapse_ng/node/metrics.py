"""A node's Prometheus metrics, in a registry of its own (several nodes may share a process in tests)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "synapse_messages_total", "Signed messages accepted, by kind", ["kind"], registry=r
        )
        self.proposals = Counter(
            "synapse_proposals_total", "Proposals accepted, by type", ["type"], registry=r
        )
        self.votes = Counter(
            "synapse_votes_cast_total", "Votes this node cast, by choice", ["choice"], registry=r
        )
        self.refused = Counter(
            "synapse_messages_refused_total",
            "Messages or requests refused, by HTTP status",
            ["status"],
            registry=r,
        )
        self.component_calls = Counter(
            "synapse_component_calls_total",
            "Calls into a component's live WASM, by version",
            ["component", "version"],
            registry=r,
        )
        self.component_faults = Gauge(
            "synapse_component_faults", "Traps or invalid outputs of live versions", ["component"], registry=r
        )
        self.component_fallbacks = Gauge(
            "synapse_component_fallbacks", "Calls served by the previous version", ["component"], registry=r
        )
        self.upgrades = Counter(
            "synapse_upgrades_activated_total", "Upgraded versions this node switched to", registry=r
        )
        self.rollbacks = Counter(
            "synapse_rollbacks_total", "Upgraded versions this node reverted", registry=r
        )
        self.evolutions = Counter(
            "synapse_evolutions_total", "Evolutionary Engine runs started by the immune system", registry=r
        )
        self.candidates = Gauge(
            "synapse_candidates_evaluated_total",
            "Candidates the engine of this node generated (from its store)",
            registry=r,
        )
        self.dissemination = Histogram(
            "synapse_dissemination_seconds",
            "Time from a message's creation to its arrival here",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.tally_mismatches = Counter(
            "synapse_tally_mismatches_total",
            "Live tallies that disagreed with the reference (decided by the reference)",
            registry=r,
        )
        self.peer_impostors = Counter(
            "synapse_peer_impostors_total",
            "Peer addresses that answered with a key other than the member pinned there",
            registry=r,
        )
        self.artifacts_collected = Counter(
            "synapse_artifacts_collected_total", "Artifacts no proposal or version needs, deleted", registry=r
        )
        self.health = Gauge(
            "synapse_health_measurement", "The immune system's latest measurements", ["metric"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
