"""Redis clients that fail fast.

A platform service asking for a risk on its hot path would rather get a 503 in a
quarter of a second than wait out redis-py's default retries with exponential
backoff; so socket timeouts are short and there are no client-side retries. The
connection pool reconnects on the next call, which is what makes the service
recover by itself when Redis comes back.
"""

from __future__ import annotations

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_TIMEOUT_S = 0.25

#: What a caller should treat as "Redis unavailable" (both clients raise these).
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def text(reply: bytes | str) -> str:
    """A Redis reply as text.

    Our clients return bytes (no ``decode_responses``), but redis-py's reply types
    also allow str; accepting both is cheaper than a cast that could be wrong.
    """
    return reply.decode() if isinstance(reply, bytes) else reply


def async_client(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> aredis.Redis:
    return aredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=AsyncRetry(NoBackoff(), 0),
    )


def sync_client(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """For batch writers and the CLI: longer timeouts, still no silent retry loops."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
