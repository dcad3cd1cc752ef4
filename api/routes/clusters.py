"""Clusters of coordinated accounts: members, the evidence that ties them, their timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from distillguard.store.clusters import get_cluster, get_cluster_timeline, list_clusters
from distillguard.store.risk import get_risks

from ..deps import Analyst, RedisDep
from ..gate import GatedRoute
from ..schemas import (
    ClusterDetailOut,
    ClusterList,
    ClusterOut,
    ClusterTimelineOut,
    RiskOut,
    errors,
    from_record,
)

router = APIRouter(
    prefix="/v1/clusters", tags=["clusters"], responses=errors(), route_class=GatedRoute
)


@router.get("", response_model=ClusterList)
async def clusters(
    client: RedisDep,
    _: Analyst,
    min_risk: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ClusterList:
    """Riskiest clusters first."""
    found = await list_clusters(client, limit=limit, min_risk=min_risk)
    return ClusterList(items=[from_record(ClusterOut, c) for c in found])


@router.get("/{cluster_id}", response_model=ClusterDetailOut, responses=errors(404))
async def cluster(
    cluster_id: Annotated[str, Path(min_length=1, max_length=200)], client: RedisDep, _: Analyst
) -> ClusterDetailOut:
    """One cluster, its evidence, and each member's current risk."""
    found = await get_cluster(client, cluster_id)
    if found is None:
        raise HTTPException(404, f"no cluster {cluster_id!r}")
    risks = await get_risks(client, found.members[:1000])
    return from_record(
        ClusterDetailOut, found, member_risks=[from_record(RiskOut, r) for r in risks]
    )


@router.get("/{cluster_id}/timeline", response_model=ClusterTimelineOut, responses=errors(404))
async def cluster_timeline(
    cluster_id: Annotated[str, Path(min_length=1, max_length=200)], client: RedisDep, _: Analyst
) -> ClusterTimelineOut:
    """Members' last request times on one axis: the picture that shows synchrony.

    A known cluster the worker wrote no timeline for (an older worker, or a pipeline
    that keeps no request times) answers with no rows and every member hidden, so the
    page can say why it is empty.
    """
    found = await get_cluster(client, cluster_id)
    if found is None:
        raise HTTPException(404, f"no cluster {cluster_id!r}")
    timeline = await get_cluster_timeline(client, cluster_id)
    if timeline is None:
        return ClusterTimelineOut(
            cluster_id=cluster_id, members=[], hidden=len(found.members), updated_at=None
        )
    return from_record(ClusterTimelineOut, timeline)
