"""The workers' own counters, as they publish them in ``dg:worker:stats`` (and, for the
cluster stage of a split topology, ``dg:worker:stats:cluster``)."""

from __future__ import annotations

import redis.asyncio as aredis

from distillguard.store.connection import text
from distillguard.store.schema import CLUSTER_STAGE_STATS, WORKER_STATS


async def worker_stats(client: aredis.Redis) -> dict[str, float]:
    """Numeric fields of the stats hashes (non-numeric ones skipped); the cluster stage's
    prefixed ``cluster_`` (``cluster_processed``, ``cluster_lag``)."""
    out: dict[str, float] = {}
    for key, prefix in ((WORKER_STATS, ""), (CLUSTER_STAGE_STATS, "cluster_")):
        for field, value in (await client.hgetall(key)).items():
            try:
                out[prefix + text(field)] = float(value)
            except ValueError:
                continue
    return out
