"""The worker's own counters, as it publishes them in ``dg:worker:stats``."""

from __future__ import annotations

import redis.asyncio as aredis

from distillguard.store.connection import text
from distillguard.store.schema import WORKER_STATS


async def worker_stats(client: aredis.Redis) -> dict[str, float]:
    """Numeric fields of the worker's stats hash (non-numeric ones are skipped)."""
    out: dict[str, float] = {}
    for field, value in (await client.hgetall(WORKER_STATS)).items():
        try:
            out[text(field)] = float(value)
        except ValueError:
            continue
    return out
