"""The FastAPI application: wiring only (routes live in ``api/routes``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from distillguard.settings import Settings, get_settings
from distillguard.store.alerts import AlertNotFound
from distillguard.store.connection import UNAVAILABLE, async_client
from distillguard.store.lifecycle import IllegalTransition

from . import console
from .deps import KeyCache
from .fastpath import RiskLookupFastPath
from .metrics import MetricsMiddleware
from .ratelimit import TokenBuckets
from .routes import alerts, audit, clusters, health, keys, risk, stream, suppressions

DESCRIPTION = """\
Risk lookups for platform services and the review queue for trust-and-safety analysts.

Every `/v1` route needs `Authorization: Bearer <API key>`. Roles: `service` (risk
lookups), `analyst` (read and review), `admin` (everything, incl. suppressions and
keys). 401 without or with a bad key, 403 with the wrong role, 429 (with
`Retry-After`) over the key's rate, 503 (fast) when Redis is unreachable.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = async_client(settings.redis_url, settings.api.redis_timeout_s)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(
        title="distillguard",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Our own Prometheus metrics cover requests; skipping OpenTelemetry's per-request
        # checks is measurable on the sub-millisecond risk lookup.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.api_settings = settings.api
    app.state.store_settings = settings.api.store
    app.state.key_cache = KeyCache(settings.api.key_cache_s)
    app.state.buckets = TokenBuckets()
    app.add_middleware(RiskLookupFastPath)  # inner: counted by the metrics middleware
    app.add_middleware(MetricsMiddleware)

    @app.exception_handler(UNAVAILABLE[0])
    @app.exception_handler(UNAVAILABLE[1])
    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "store unavailable"}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(IllegalTransition)
    async def _conflict(request: Request, exc: IllegalTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(AlertNotFound)
    async def _no_alert(request: Request, exc: AlertNotFound) -> JSONResponse:
        return JSONResponse({"detail": f"no alert {exc.args[0]!r}"}, status_code=404)

    app.include_router(health.router)
    # stream before alerts: `/alerts/stream` must not be read as an alert id.
    for module in (risk, stream, alerts, clusters, suppressions, keys, audit):
        app.include_router(module.router)
    app.include_router(console.router)  # the analyst console's static page
    return app
