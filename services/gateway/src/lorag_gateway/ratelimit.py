"""Requests per owner, as token buckets in this process: a steady rate with room for bursts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_BUCKETS = 10_000  # past this, buckets that refilled completely are forgotten


@dataclass
class Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`rate` requests a second per key, bursts of up to `burst`; per process, so a deployment
    with N gateway replicas allows up to N times as much."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str) -> float:
        """Spend one request of `key`'s; 0 when allowed, else the seconds until one is free."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        rate, burst = self.rate, self.burst
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * rate >= burst]
        for key in full:
            del self._buckets[key]
