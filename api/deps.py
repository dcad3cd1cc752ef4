"""Shared dependencies: the Redis handle, the caller's identity, role checks.

Routes declare who may call them with ``Depends(Allow(...))`` (or the named aliases
below) and never look at headers themselves; ``gate.py`` enforces it.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Annotated, Any

import redis.asyncio as aredis
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from distillguard.settings import Api
from distillguard.store import apikeys
from distillguard.store.models import ApiKeyRecord, Role

from .ratelimit import TokenBuckets, retry_after_header

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log and alert history name this caller."""
        return f"{self.name}#{self.key_id}"


# async although they await nothing: FastAPI runs a plain ``def`` dependency in its
# thread pool, which measured ~0.5 ms per request on the risk lookup.
async def get_redis(request: Request) -> aredis.Redis:
    return request.app.state.redis


async def get_api_settings(request: Request) -> Api:
    return request.app.state.api_settings


RedisDep = Annotated[aredis.Redis, Depends(get_redis)]
ApiSettingsDep = Annotated[Api, Depends(get_api_settings)]


class KeyCache:
    """Verified key records for ``ttl_s`` seconds: saves a Redis GET per request."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._records: dict[str, tuple[ApiKeyRecord, float]] = {}

    async def record(self, client: aredis.Redis, key_id: str) -> ApiKeyRecord | None:
        hit = self._records.get(key_id)
        now = time.monotonic()
        if hit is not None and now - hit[1] < self.ttl_s:
            return hit[0]
        record = await apikeys.get_key(client, key_id)
        if record is None:
            self._records.pop(key_id, None)
        else:
            if len(self._records) > 10_000:
                self._records.clear()
            self._records[key_id] = (record, now)
        return record

    def forget(self, key_id: str) -> None:
        self._records.pop(key_id, None)


def invalid(where: str, name: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (the documented ``HTTPValidationError``)."""
    return RequestValidationError([{"type": "value_error", "loc": (where, name), "msg": message}])


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


#: The ``api.rate_limits`` entry for requests without a valid key (not a role).
UNAUTHENTICATED = "unauthenticated"
#: Where :func:`gate.admit_request` leaves the admitted :class:`Caller` in the ASGI scope.
CALLER_SCOPE_KEY = "distillguard.caller"


def address_key(host: str | None) -> str:
    """The bucket of a client address. An IPv6 /64 is one bucket: a single host is
    routinely given a whole /64, so per-address buckets would not throttle it.

    >>> address_key("203.0.113.9"), address_key("2001:db8:1:2:a:b:c:d"), address_key(None)
    ('203.0.113.9', '2001:db8:1:2::/64', 'unknown')
    """
    if host is None:
        return "unknown"
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def _too_many(wait: float, detail: str) -> HTTPException:
    return HTTPException(429, detail, headers={"Retry-After": retry_after_header(wait)})


async def admit(
    state: Any, token: str | None, roles: tuple[Role, ...], client_host: str | None
) -> Caller:
    """Authenticate (401), authorise (403), then charge the key's rate limit (429).

    ``state`` is the app's state; ``token`` the bearer credentials (None when absent
    or not a Bearer header); ``client_host`` the peer address as the server reports it.
    A failed authentication costs the client address a token (``rate_limits.
    unauthenticated``); with none left the answer is 429 instead of 401, so a guesser is
    told to back off and learns nothing either way. A valid key is never charged to, nor
    refused for, its address: a gateway sharing a NAT with a guesser keeps working.
    """
    settings: Api = state.api_settings
    record = None
    secret = ""
    parsed = None if token is None else apikeys.parse(token)
    if parsed is not None:
        key_id, secret = parsed
        record = await state.key_cache.record(state.redis, key_id)
    if record is None or not apikeys.verify(record, secret):
        guard = settings.rate_limits.get(UNAUTHENTICATED)
        if guard is not None:
            buckets: TokenBuckets = state.address_buckets
            wait = buckets.take(address_key(client_host), guard.rate_per_s, guard.burst)
            if wait > 0:
                raise _too_many(wait, "too many requests without a valid API key")
        raise _unauthorized("missing API key" if token is None else "invalid API key")
    if record.role not in roles:
        raise HTTPException(403, f"role {record.role!r} may not call this endpoint")
    limit = settings.rate_limits.get(record.role)
    if limit is not None:
        buckets = state.buckets
        wait = buckets.take(record.key_id, limit.rate_per_s, limit.burst)
        if wait > 0:
            raise _too_many(wait, "rate limit exceeded")
    return Caller(key_id=record.key_id, name=record.name, role=record.role)


class Allow:
    """The dependency declaring who may call a route: ``Depends(Allow(...))`` (or the
    aliases below). It does not authenticate: :class:`gate.GatedRoute` reads the roles
    from it and admits the request before FastAPI touches the body; this returns the
    caller the gate recorded. A keyed route outside the gate fails closed (500)."""

    def __init__(self, *roles: Role) -> None:
        self.roles = roles

    # async although it awaits nothing: FastAPI runs a plain ``def`` dependency in its
    # thread pool, which measured ~0.5 ms per request on the risk lookup.
    async def __call__(
        self,
        request: Request,
        # for the OpenAPI security scheme; the gate has read the header already
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        caller: Caller | None = request.scope.get(CALLER_SCOPE_KEY)
        if caller is None or caller.role not in self.roles:
            raise RuntimeError(f"{request.url.path} is not behind the gate (route_class)")
        return caller


RISK_ROLES: tuple[Role, ...] = ("service", "analyst", "admin")
#: Risk lookups: every role.
RiskReader = Annotated[Caller, Depends(Allow(*RISK_ROLES))]
#: The review queue: reading alerts and clusters, acknowledging, reviewing.
Analyst = Annotated[Caller, Depends(Allow("analyst", "admin"))]
#: Suppressions and API keys.
Admin = Annotated[Caller, Depends(Allow("admin"))]
