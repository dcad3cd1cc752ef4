"""API key administration (admin). The CLI (`distillguard keys ...`) does the same."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request

from distillguard.store import apikeys

from ..deps import Admin, RedisDep
from ..gate import GatedRoute
from ..schemas import KeyCreated, KeyIn, KeyList, KeyOut, errors, from_record

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=errors(), route_class=GatedRoute)


@router.get("", response_model=KeyList)
async def list_keys(client: RedisDep, _: Admin) -> KeyList:
    """Every key, revoked ones included; never the secrets."""
    return KeyList(items=[from_record(KeyOut, k) for k in await apikeys.list_keys(client)])


@router.post("", response_model=KeyCreated, status_code=201)
async def create_key(body: KeyIn, client: RedisDep, caller: Admin) -> KeyCreated:
    """The response holds the key; it is not stored and cannot be shown again."""
    record, key = await apikeys.create_key(client, body.role, body.name, caller.actor)
    return from_record(KeyCreated, record, key=key)


@router.delete("/{key_id}", response_model=KeyOut, responses=errors(404, 409))
async def revoke_key(
    key_id: Annotated[str, Path(min_length=1, max_length=64)],
    request: Request,
    client: RedisDep,
    caller: Admin,
) -> KeyOut:
    """Revoke at once (this process); other API processes within `api.key_cache_s`.
    A key cannot revoke itself (409): an admin must not lock the last door from inside."""
    if key_id == caller.key_id:
        raise HTTPException(409, "a key cannot revoke itself; use another admin key")
    record = await apikeys.revoke_key(client, key_id, caller.actor)
    if record is None:
        raise HTTPException(404, f"no key {key_id!r}")
    request.app.state.key_cache.forget(key_id)
    return from_record(KeyOut, record)
