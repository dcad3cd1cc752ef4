"""The risk lookup without the framework: an ASGI shortcut for the platform hot path.

``GET /v1/accounts/{account_id}/risk`` is the one route called on other services'
request paths, at thousands per second. Through FastAPI's routing and dependency
resolution it costs about twice the CPU of the work itself (one Redis MGET). This
middleware answers exactly that request shape directly, through the same gate as
every keyed route (:func:`gate.admit_request`: 401 / 403 / 429 / 413), the same store
call and the same error bodies;
anything else — and any request it is not sure about — goes on to FastAPI, where the
documented route (``routes/risk.py``) serves it identically. The route tests and the
schemathesis run exercise this path, since they call the same URL.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException

from distillguard.records import AccountRisk, dumps
from distillguard.store.connection import UNAVAILABLE
from distillguard.store.risk import get_risk_json

from .deps import RISK_ROLES
from .gate import Send, admit_request, respond

PREFIX = "/v1/accounts/"
SUFFIX = "/risk"
ROUTE_PATH = "/v1/accounts/{account_id}/risk"


class _Route:
    """What the metrics middleware reads from ``scope["route"]``."""

    path = ROUTE_PATH


class RiskLookupFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                account_id = path[len(PREFIX) : -len(SUFFIX)]
                if 0 < len(account_id) <= 128 and "/" not in account_id:
                    scope["route"] = _Route
                    await self._serve(scope, account_id, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, scope: dict[str, Any], account_id: str, send: Send) -> None:
        state = scope["app"].state  # Starlette puts the app in scope before middleware
        try:
            await admit_request(state, scope, RISK_ROLES)
            raw = await get_risk_json(state.redis, account_id)
        except HTTPException as exc:
            body = orjson.dumps({"detail": exc.detail})
            await respond(send, exc.status_code, body, exc.headers or {})
            return
        except UNAVAILABLE:
            body = b'{"detail":"store unavailable"}'
            await respond(send, 503, body, {"Retry-After": "1"})
            return
        await respond(
            send, 200, raw if raw is not None else dumps(AccountRisk(account_id=account_id)), {}
        )
