"""The gate every keyed request passes before its body is touched.

FastAPI reads and parses a request body before it runs any dependency, so an auth
dependency alone would let a caller without a key make the service read 50 MB, parse
malformed JSON and answer 422 instead of 401. Here authentication, authorisation and
the rate limits (:func:`deps.admit`) run first, then the body limit, and only then
FastAPI's own request handling. Two entry points share :func:`admit_request`:

- :class:`GatedRoute`, the ``route_class`` of every router with keyed routes: after
  FastAPI's routing has chosen the route (so the roles are the route's own, declared
  once with ``deps.Allow``), before FastAPI reads the body;
- the risk fast path (``fastpath.py``), which answers ahead of routing.

Order: 401 / 429 (no valid key) -> 403 (wrong role) -> 429 (key's rate) -> 413
(``Content-Length`` over ``api.max_body_bytes``) -> the body, counted as it arrives
and cut with a 413 as soon as it crosses the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Message, Receive, Scope, Send

from distillguard.store.models import Role

from .deps import CALLER_SCOPE_KEY, Allow, Caller, admit


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header, as ``HTTPBearer`` reads it."""
    for name, value in headers:
        if name == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            if scheme.lower() == "bearer" and credentials:
                return credentials
            return None
    return None


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed one before we get here
    return None


def too_large(limit: int) -> HTTPException:
    # Connection: close because the rest of the body is never read: the server need
    # not drain (or keep accepting) what the client still sends.
    return HTTPException(
        413,
        f"request body larger than {limit} bytes (api.max_body_bytes)",
        headers={"Connection": "close"},
    )


async def admit_request(state: Any, scope: Scope, roles: tuple[Role, ...]) -> Caller:
    """Admit the request (or raise the HTTPException to answer) and record the caller
    in the scope, where the route's ``Allow`` dependency picks it up."""
    client = scope.get("client")
    caller = await admit(
        state, bearer_token(scope["headers"]), roles, None if client is None else client[0]
    )
    limit: int = state.api_settings.max_body_bytes
    length = _content_length(scope["headers"])
    if length is not None and length > limit:
        raise too_large(limit)
    scope[CALLER_SCOPE_KEY] = caller
    return caller


def limit_body(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises a 413 as soon as the body crosses ``limit`` bytes: a
    chunked body has no Content-Length to check up front."""
    seen = 0

    async def receive_limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return receive_limited


def required_roles(dependant: Dependant) -> tuple[Role, ...] | None:
    """The roles a route admits, from its ``Allow`` dependencies (None: an open route).
    Several ``Allow`` on one route admit only the roles they all allow."""
    roles: tuple[Role, ...] | None = None
    pending = [dependant]
    while pending:
        current = pending.pop()
        if isinstance(current.call, Allow):
            allowed = current.call.roles
            roles = allowed if roles is None else tuple(r for r in roles if r in allowed)
        pending.extend(current.dependencies)
    return roles


class GatedRoute(APIRoute):
    """An APIRoute whose handler passes :func:`admit_request` before FastAPI reads the
    body. Open routes (no ``Allow`` dependency) are left exactly as FastAPI builds them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        roles = required_roles(self.dependant)
        if roles is None:
            return handler
        reads_body = self.body_field is not None

        async def gated(request: Request) -> Response:
            state = request.app.state
            await admit_request(state, request.scope, roles)
            if reads_body:
                receive = limit_body(request.receive, state.api_settings.max_body_bytes)
                request = Request(request.scope, receive)
            return await handler(request)

        return gated


def check_gated(routers: list[APIRouter]) -> None:
    """Fail at start-up, not per request, if a keyed route would skip the gate."""
    for router in routers:
        for route in router.routes:
            if (
                isinstance(route, APIRoute)
                and not isinstance(route, GatedRoute)
                and required_roles(route.dependant) is not None
            ):
                raise RuntimeError(f"{route.path}: keyed route without route_class=GatedRoute")


async def respond(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    """A complete JSON response, for the paths that answer without a framework."""
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
