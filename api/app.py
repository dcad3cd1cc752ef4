"""The FastAPI application: wiring, and the shape of validation errors (routes live in
``api/routes``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from distillguard.settings import Settings, get_settings
from distillguard.store.alerts import AlertNotFound
from distillguard.store.connection import UNAVAILABLE, async_client
from distillguard.store.lifecycle import IllegalTransition

from . import console
from .deps import KeyCache
from .fastpath import RiskLookupFastPath
from .gate import check_gated
from .metrics import MetricsMiddleware
from .ratelimit import TokenBuckets
from .routes import alerts, audit, clusters, health, keys, risk, stream, suppressions

DESCRIPTION = """\
Risk lookups for platform services and the review queue for trust-and-safety analysts.

Every `/v1` route needs `Authorization: Bearer <API key>`. Roles: `service` (risk
lookups), `analyst` (read and review), `admin` (everything, incl. suppressions and
keys). 401 without or with a bad key, 403 with the wrong role, 429 (with
`Retry-After`) over the key's rate (or, without a valid key, over the client address's),
413 for a body over `api.max_body_bytes`, 503 (fast) when Redis is unreachable. All of
these are decided before the request body is read. A 422 names each invalid field and
why, and never repeats the values sent.
"""

#: Longest string of a 422 detail (a location part or a message) sent back: field
#: names come from the client too, and a 50 KB key must not come back as a 50 KB error.
MAX_ERROR_TEXT = 120


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def redact(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error without the request's values: the type, location and
    message stay; ``input`` goes, and so does any ``ctx`` entry that is not a plain
    constraint (an exception's text is already the message; the input may be echoed).

    >>> redact({"type": "string_too_long", "loc": ("body", "x" * 500), "msg": "Too long",
    ...         "input": "y" * 50_000, "ctx": {"max_length": 128}})["loc"][1][-3:]
    'xx…'
    """
    out: dict[str, Any] = {
        "type": error["type"],
        "loc": [_clip(p) if isinstance(p, str) else p for p in error["loc"]],
        "msg": _clip(str(error["msg"])),
    }
    given = error.get("input")
    ctx = {
        k: v
        for k, v in (error.get("ctx") or {}).items()
        if isinstance(v, int | float | str) and v != given and len(str(v)) <= MAX_ERROR_TEXT
    }
    if ctx:
        out["ctx"] = ctx
    return out


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
    app.state.address_buckets = TokenBuckets()  # its own: an address flood clears only these
    app.add_middleware(RiskLookupFastPath)  # inner: counted by the metrics middleware
    app.add_middleware(MetricsMiddleware)

    @app.exception_handler(UNAVAILABLE[0])
    @app.exception_handler(UNAVAILABLE[1])
    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "store unavailable"}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [redact(e) for e in exc.errors()]}, status_code=422)

    @app.exception_handler(IllegalTransition)
    async def _conflict(request: Request, exc: IllegalTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(AlertNotFound)
    async def _no_alert(request: Request, exc: AlertNotFound) -> JSONResponse:
        return JSONResponse({"detail": f"no alert {exc.args[0]!r}"}, status_code=404)

    # stream before alerts: `/alerts/stream` must not be read as an alert id.
    modules = (health, risk, stream, alerts, clusters, suppressions, keys, audit, console)
    check_gated([m.router for m in modules])
    for module in modules:  # console last: the analyst console's static page
        app.include_router(module.router)
    return app
