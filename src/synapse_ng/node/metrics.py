"""A node's Prometheus metrics, in a registry of its own (several nodes may share a process in tests).

The Evolutionary Engine's figures are read from its store when /metrics is scraped (EngineCollector), so
they are the same numbers as `GET /api/evolutionary-engine/stats` and survive a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector


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

    def watch_engine(self, statistics: Callable[[], dict], enabled: Callable[[], bool]) -> None:
        """Serve the engine's statistics (the seed's dict, statistics.py) as metrics on every scrape."""
        self.registry.register(EngineCollector(statistics, enabled))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class EngineCollector(Collector):
    """The engine's statistics as Prometheus metrics: counters for what only grows, summaries (count and
    sum of seconds) for the times, gauges for ratios and bests."""

    def __init__(self, statistics: Callable[[], dict], enabled: Callable[[], bool]) -> None:
        self.statistics = statistics
        self.enabled = enabled

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "synapse_engine_enabled",
            "1 if this node's engine evolves chronic issues",
            value=int(self.enabled()),
        )
        stats = self.statistics()
        yield CounterMetricFamily(
            "synapse_engine_generations",
            "Candidates the engine generated (every stored attempt but the baselines)",
            value=stats["total_generations"],
        )
        compilations = CounterMetricFamily(
            "synapse_engine_compilations", "Compiler runs on candidates, by result", labels=["result"]
        )
        compilations.add_metric(["succeeded"], stats["successful_compilations"])
        compilations.add_metric(["failed"], stats["failed_compilations"])
        yield compilations
        yield GaugeMetricFamily(
            "synapse_engine_compile_success_ratio",
            "Successful compilations over all compilations (0 before the first)",
            value=stats["success_rate"],
        )
        yield SummaryMetricFamily(
            "synapse_engine_generation_seconds",
            "Time the model took per generated candidate",
            count_value=stats["total_generations"],
            sum_value=stats["total_generation_time_seconds"],
        )
        yield SummaryMetricFamily(
            "synapse_engine_compilation_seconds",
            "Time the compiler took per compiled candidate",
            count_value=stats["successful_compilations"] + stats["failed_compilations"],
            sum_value=stats["total_compilation_time_seconds"],
        )
        best = GaugeMetricFamily(
            "synapse_engine_best_improvement_percent",
            "The best held-out improvement the engine measured, per component",
            labels=["component"],
        )
        for component, improvement in sorted(stats["best_improvement_per_component"].items()):
            best.add_metric([component], improvement)
        yield best
