"""Liveness, readiness and metrics (health checks need no key; metrics do)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from distillguard.store.connection import UNAVAILABLE
from distillguard.store.stats import worker_lags, worker_stats

from ..deps import Analyst, RedisDep
from ..gate import GatedRoute
from ..metrics import render
from ..schemas import Health, errors

router = APIRouter(tags=["health"], route_class=GatedRoute)  # /metrics is keyed


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (says nothing about Redis)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Redis unreachable."}},
)
async def readyz(client: RedisDep) -> Response:
    """Ready to serve: Redis answers a PING."""
    try:
        await client.ping()
    except UNAVAILABLE:
        return JSONResponse({"status": "redis unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={**errors(), 200: {"content": {"text/plain": {}}, "description": "Prometheus."}},
)
async def metrics(client: RedisDep, _: Analyst) -> Response:
    """Prometheus text: request counts/latency by route, `distillguard_redis_up`, and the
    worker's counters from `dg:worker:stats` as `distillguard_worker_<field>`, each
    worker's lag as `distillguard_worker_instance_lag{worker=...}`."""
    try:
        lags = await worker_lags(client)
        stats, up = await worker_stats(client, lags), True
    except UNAVAILABLE:
        stats, lags, up = {}, {}, False
    body = render(stats, up, lags)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
