"""Cluster reads for analysts: the riskiest clusters, one cluster, its members' timeline."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aredis

from distillguard.records import Cluster, ClusterTimeline, loads
from distillguard.store import schema


async def list_clusters(
    client: aredis.Redis, limit: int = 50, min_risk: float = 0.0
) -> list[Cluster]:
    """Riskiest first."""
    # members only (no withscores), as bytes: redis-py's reply type cannot tell
    ids = cast(
        "list[bytes]",
        await client.zrange(
            schema.CLUSTERS, "+inf", min_risk, desc=True, byscore=True, offset=0, num=limit
        ),
    )
    if not ids:
        return []
    raws = await client.mget([schema.cluster(i.decode()) for i in ids])
    return [loads(r, Cluster) for r in raws if r is not None]


async def get_cluster(client: aredis.Redis, cluster_id: str) -> Cluster | None:
    raw = await client.get(schema.cluster(cluster_id))
    return None if raw is None else loads(raw, Cluster)


async def get_cluster_timeline(client: aredis.Redis, cluster_id: str) -> ClusterTimeline | None:
    """None when the worker wrote none (an older worker, or a pipeline without times)."""
    raw = await client.get(schema.cluster_timeline(cluster_id))
    return None if raw is None else loads(raw, ClusterTimeline)
