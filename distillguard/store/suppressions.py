"""Suppression rules: CRUD for admins; the writer reads them once per batch."""

from __future__ import annotations

import secrets

import msgspec
import redis.asyncio as aredis

from distillguard.records import dumps, loads
from distillguard.store import schema
from distillguard.store.audit import entry, queue_audit
from distillguard.store.models import Suppression, SuppressionScope, now_iso


async def list_suppressions(client: aredis.Redis) -> list[Suppression]:
    rules = []
    for raw in await client.hvals(schema.SUPPRESSIONS):
        try:
            rules.append(loads(raw, Suppression))
        except msgspec.DecodeError:
            continue
    return sorted(rules, key=lambda r: r.created_at)


async def get_suppression(client: aredis.Redis, suppression_id: str) -> Suppression | None:
    raw = await client.hget(schema.SUPPRESSIONS, suppression_id)
    return None if raw is None else loads(raw, Suppression)


async def create_suppression(
    client: aredis.Redis,
    scope: SuppressionScope,
    value: str,
    reason: str,
    actor: str,
    expires_at: str | None,
) -> Suppression:
    rule = Suppression(
        suppression_id=f"sup_{secrets.token_hex(6)}",
        scope=scope,
        value=value,
        reason=reason,
        created_by=actor,
        created_at=now_iso(),
        expires_at=expires_at,
    )
    await _save(client, rule, actor, "suppression.create")
    return rule


async def update_suppression(
    client: aredis.Redis,
    rule: Suppression,
    reason: str | None,
    expires_at: str | None,
    clear_expiry: bool,
    actor: str,
) -> Suppression:
    rule = msgspec.structs.replace(
        rule,
        reason=reason if reason is not None else rule.reason,
        expires_at=None if clear_expiry else (expires_at or rule.expires_at),
    )
    await _save(client, rule, actor, "suppression.update")
    return rule


async def delete_suppression(client: aredis.Redis, suppression_id: str, actor: str) -> bool:
    async with client.pipeline(transaction=True) as pipe:
        pipe.hdel(schema.SUPPRESSIONS, suppression_id)
        queue_audit(pipe, entry(actor, "suppression.delete", suppression_id))
        removed, _ = await pipe.execute()
    return bool(removed)


async def _save(client: aredis.Redis, rule: Suppression, actor: str, action: str) -> None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(schema.SUPPRESSIONS, rule.suppression_id, dumps(rule))
        queue_audit(
            pipe,
            entry(
                actor,
                action,
                rule.suppression_id,
                scope=rule.scope,
                value=rule.value,
                reason=rule.reason,
                expires_at=rule.expires_at,
            ),
        )
        await pipe.execute()
