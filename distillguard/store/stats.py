"""The workers' own counters, as they publish them in ``dg:worker:stats`` (and, for the
cluster stage of a split topology, ``dg:worker:stats:cluster``), and each worker's lag
(``dg:worker:lag``)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis.asyncio as aredis

from distillguard.store.connection import text
from distillguard.store.schema import (
    CLUSTER_STAGE_STATS,
    WORKER_LAG,
    WORKER_LAG_FRESH_S,
    WORKER_STATS,
)


async def worker_stats(
    client: aredis.Redis, lags: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Numeric fields of the stats hashes (non-numeric ones skipped); the cluster stage's
    prefixed ``cluster_`` (``cluster_processed``, ``cluster_lag``).

    ``lag`` and ``cluster_lag`` are the sums over the workers that reported their own
    lag lately (:func:`worker_lags`, read here unless given), when any did: with
    several account workers the stats hash holds only the last writer's.
    """
    out: dict[str, float] = {}
    for key, prefix in ((WORKER_STATS, ""), (CLUSTER_STAGE_STATS, "cluster_")):
        for field, value in (await client.hgetall(key)).items():
            try:
                out[prefix + text(field)] = float(value)
            except ValueError:
                continue
    if lags is None:
        lags = await worker_lags(client)
    for prefix, stages in (("", ("all", "account")), ("cluster_", ("cluster",))):
        mine = [v for name, v in lags.items() if name.split(":", 1)[0] in stages]
        if mine:
            out[prefix + "lag"] = sum(mine)
    return out


async def worker_lags(client: aredis.Redis, now: float | None = None) -> dict[str, float]:
    """Each worker's lag, ``<stage>:<instance>`` -> records behind, if reported within
    ``WORKER_LAG_FRESH_S``: a stale field (a worker gone) is left out, not deleted (a
    read must not race a worker's write)."""
    now = time.time() if now is None else now
    out: dict[str, float] = {}
    for field, value in (await client.hgetall(WORKER_LAG)).items():
        name = text(field)
        try:
            lag, at = (float(x) for x in text(value).split())
        except ValueError:
            continue
        if now - at <= WORKER_LAG_FRESH_S:
            out[name] = lag
    return out
