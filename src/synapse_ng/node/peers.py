"""What a node knows about each peer's link, measured on its own HTTP calls: the inputs of gossip_protocol.

Latency is an exponentially weighted mean of round-trip times; reliability the share of recent calls
that succeeded (a prior of 1 success in 1 call, so a fresh peer is not shunned); contact age the time
since the last successful call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EWMA = 0.3
DEFAULT_LATENCY_MS = 50.0
MEMORY = 20  # calls that count for reliability


@dataclass
class PeerLink:
    url: str
    node_id: str | None = None
    latency_ms: float = DEFAULT_LATENCY_MS
    outcomes: list[bool] = field(default_factory=list)
    last_ok: float | None = None
    synced_at: float | None = None  # start of the last pull that got everything this peer had
    cursor: int = 0  # the peer's sequence number up to which everything has been pulled
    identity: str | None = None  # "ok" once the peer proved the key of the member pinned at its address
    # What the peer says it runs (its /api/identity, not signed: for people to read, never to decide on)
    software: str | None = None
    components: dict[str, str] = field(default_factory=dict)

    def record(self, ok: bool, seconds: float) -> None:
        if ok:
            self.latency_ms = (1 - EWMA) * self.latency_ms + EWMA * seconds * 1000.0
            self.last_ok = time.time()
        self.outcomes = (self.outcomes + [ok])[-MEMORY:]

    @property
    def reliability(self) -> float:
        return (1 + sum(self.outcomes)) / (1 + len(self.outcomes))

    def contact_age_ms(self, now: float | None = None) -> float:
        if self.last_ok is None:
            return 3_600_000.0
        return max(0.0, ((now or time.time()) - self.last_ok) * 1000.0)

    @property
    def reachable(self) -> bool:
        return bool(self.outcomes) and self.outcomes[-1]

    def to_dict(self) -> dict:
        return {
            "url": self.url,
            "node_id": self.node_id,
            "latency_ms": round(self.latency_ms, 3),
            "reliability": round(self.reliability, 3),
            "contact_age_ms": round(self.contact_age_ms(), 1),
            "reachable": self.reachable,
            "identity": self.identity or "not checked yet",
            "software": self.software,
            "components": self.components,
        }
