"""Suppression rules (admin): silence alerts about a known-good account, org or cluster."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from distillguard.records import iso
from distillguard.store import suppressions as store
from distillguard.store.models import Suppression

from ..deps import Admin, RedisDep
from ..gate import GatedRoute
from ..schemas import SuppressionIn, SuppressionList, SuppressionOut, SuppressionPatch, errors

router = APIRouter(
    prefix="/v1/suppressions", tags=["suppressions"], responses=errors(), route_class=GatedRoute
)

SuppressionId = Annotated[str, Path(min_length=1, max_length=100)]


def _out(rule: Suppression) -> SuppressionOut:
    return SuppressionOut(
        **{f: getattr(rule, f) for f in rule.__struct_fields__}, active=rule.active()
    )


def _stamp(when: datetime | None) -> str | None:
    """Store form of an expiry the schema has already bounded (``SuppressionExpiry``)."""
    return None if when is None else iso(when.timestamp())


@router.get("", response_model=SuppressionList)
async def list_rules(client: RedisDep, _: Admin) -> SuppressionList:
    return SuppressionList(items=[_out(r) for r in await store.list_suppressions(client)])


@router.post("", response_model=SuppressionOut, status_code=201)
async def create_rule(body: SuppressionIn, client: RedisDep, caller: Admin) -> SuppressionOut:
    """New alerts matching the rule are dropped until it expires; risk is still scored."""
    rule = await store.create_suppression(
        client, body.scope, body.value, body.reason, caller.actor, _stamp(body.expires_at)
    )
    return _out(rule)


@router.get("/{suppression_id}", response_model=SuppressionOut, responses=errors(404))
async def get_rule(suppression_id: SuppressionId, client: RedisDep, _: Admin) -> SuppressionOut:
    return _out(await _existing(client, suppression_id))


@router.patch("/{suppression_id}", response_model=SuppressionOut, responses=errors(404))
async def update_rule(
    suppression_id: SuppressionId, body: SuppressionPatch, client: RedisDep, caller: Admin
) -> SuppressionOut:
    """Change the reason or expiry (`clear_expiry: true` makes it permanent)."""
    rule = await _existing(client, suppression_id)
    updated = await store.update_suppression(
        client, rule, body.reason, _stamp(body.expires_at), body.clear_expiry, caller.actor
    )
    return _out(updated)


@router.delete("/{suppression_id}", status_code=204, response_class=Response, responses=errors(404))
async def delete_rule(suppression_id: SuppressionId, client: RedisDep, caller: Admin) -> Response:
    await _existing(client, suppression_id)
    await store.delete_suppression(client, suppression_id, caller.actor)
    return Response(status_code=204)


async def _existing(client: RedisDep, suppression_id: str) -> Suppression:
    rule = await store.get_suppression(client, suppression_id)
    if rule is None:
        raise HTTPException(404, f"no suppression {suppression_id!r}")
    return rule
