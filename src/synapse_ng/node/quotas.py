"""What one member can make a node store and process: a message rate per identity (a token bucket).

    rate = MessageRate(per_second=5, burst=200)
    rate.take(author, now) -> float | None     None: allowed; else seconds until the next message would be

The counts that need the node's state (open proposals per member, artifact bytes per member and in
total) are checked in the node, against what it holds; this bucket is the only bookkeeping of its own,
and it is in memory: a restart forgives, which costs an attacker nothing it could not do anyway.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class MessageRate:
    def __init__(self, per_second: float, burst: int):
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def take(self, author: str, now: float) -> float | None:
        bucket = self._buckets.get(author)
        if bucket is None:
            bucket = self._buckets[author] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        if bucket.tokens < 1.0:
            return (1.0 - bucket.tokens) / self.per_second
        bucket.tokens -= 1.0
        return None
