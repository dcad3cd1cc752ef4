"""Token buckets, in process: per API key, and per client address for requests
without a valid key.

In process rather than in Redis: the risk lookup's budget is a few milliseconds and
a Redis round trip per request for accounting would double its Redis traffic. The
cost is that N uvicorn workers each give a key its own bucket (N x the rate).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """``take(key, rate, burst)`` -> 0.0 if allowed, else seconds until a token.

    Examples
    --------
    >>> buckets = TokenBuckets(clock=lambda: 0.0)
    >>> [buckets.take("k", rate=1.0, burst=2) for _ in range(3)]
    [0.0, 0.0, 1.0]
    """

    def __init__(self, clock: object = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def take(self, key: str, rate: float, burst: int) -> float:
        now = self._clock()  # type: ignore[operator]
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()  # bounded memory; forgetting buckets only forgives
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        else:
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, at least 1 (the header does not take fractions)."""
    return str(max(1, math.ceil(wait_s)))
