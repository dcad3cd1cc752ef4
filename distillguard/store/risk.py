"""Account risk reads: the platform services' hot path (one GET, or one MGET per batch)."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aredis

from distillguard.records import AccountRisk, loads
from distillguard.store import schema


async def get_risk(client: aredis.Redis, account_id: str) -> AccountRisk:
    """The stored risk, or CONTRACT §4's answer for an account never seen (0.0, low)."""
    raw = await client.get(schema.risk(account_id))
    return AccountRisk(account_id=account_id) if raw is None else loads(raw, AccountRisk)


async def get_risk_json(client: aredis.Redis, account_id: str) -> bytes | None:
    """The stored CONTRACT §4 JSON as is (None for an account never seen)."""
    raw = await client.get(schema.risk(account_id))
    return raw.encode() if isinstance(raw, str) else raw


async def get_risks(client: aredis.Redis, account_ids: Sequence[str]) -> list[AccountRisk]:
    if not account_ids:
        return []
    raws = await client.mget([schema.risk(a) for a in account_ids])
    return [
        AccountRisk(account_id=a) if raw is None else loads(raw, AccountRisk)
        for a, raw in zip(account_ids, raws, strict=True)
    ]
