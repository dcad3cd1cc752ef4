"""Account risk reads: the platform services' hot path (one MGET per account or batch).

One process stores an account's reported risk in ``dg:risk``. A split topology
stores the account stage's risk there and the cluster stage's lifts beside it
(``dg:cluster-risk``); the read joins them with the function the single process uses
(:func:`records.combine_risk`), so both deployments answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aredis

from distillguard.records import AccountRisk, ClusterRisk, combine_risk, dumps, loads
from distillguard.store import schema


def joined(account_id: str, raw: bytes | str | None, lift: bytes | str | None) -> AccountRisk:
    """The reported risk from the stored risk and lifts (CONTRACT §4's answer for an
    account never seen: 0.0, low)."""
    base = AccountRisk(account_id=account_id) if raw is None else loads(raw, AccountRisk)
    if lift is None:
        return base
    raised = loads(lift, ClusterRisk)
    return combine_risk(base, raised.raised, raised.updated_at)


async def get_risk(client: aredis.Redis, account_id: str) -> AccountRisk:
    raw, lift = await client.mget([schema.risk(account_id), schema.cluster_risk(account_id)])
    return joined(account_id, raw, lift)


async def get_risk_json(client: aredis.Redis, account_id: str) -> bytes | None:
    """The CONTRACT §4 JSON (stored as is when nothing lifts it; None if never seen)."""
    raw, lift = await client.mget([schema.risk(account_id), schema.cluster_risk(account_id)])
    if lift is None:
        return raw.encode() if isinstance(raw, str) else raw
    return dumps(joined(account_id, raw, lift))


async def get_risks(client: aredis.Redis, account_ids: Sequence[str]) -> list[AccountRisk]:
    if not account_ids:
        return []
    keys = [k for a in account_ids for k in (schema.risk(a), schema.cluster_risk(a))]
    raws = await client.mget(keys)
    return [joined(a, raws[2 * i], raws[2 * i + 1]) for i, a in enumerate(account_ids)]
