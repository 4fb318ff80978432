"""Per-conversation flood control: a token bucket for each (sender, recipient) pair.

Keyed by the pair rather than the sender, so one grid process answering thousands of users
is not throttled, while one user hammering a grid node is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float


class FloodGate:
    def __init__(self, rate: float = 20.0, burst: float = 40.0) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def allow(self, now: float, sender: str, recipient: str) -> bool:
        """Take one token for this pair; False means drop the message."""
        key = (sender, recipient)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.last) * self.rate)
        bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def prune(self, now: float) -> None:
        """Forget pairs whose bucket has refilled: they cost memory and mean nothing."""
        full_after = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.last < full_after}

    @property
    def pairs(self) -> int:
        """How many (sender, recipient) pairs have a bucket (not ``__len__``: an empty gate
        must not be falsy, as an ``if flood`` would then take a new gate for no gate)."""
        return len(self._buckets)
