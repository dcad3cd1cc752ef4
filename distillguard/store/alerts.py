"""Alert reads for the review queue, and analysts' changes to an alert.

A change is one optimistic transaction: ``WATCH`` the alert, apply a pure lifecycle
function, then write the alert, move it between status indexes, append the audit
entry (and, for a review, the labels) and publish the update, all in one ``MULTI``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import cast

import orjson
import redis
import redis.asyncio as aredis

from distillguard.records import Alert, Label, dumps, loads
from distillguard.store import lifecycle, schema
from distillguard.store.audit import entry, queue_audit
from distillguard.store.connection import text
from distillguard.store.feedback import queue_label
from distillguard.store.models import AuditEntry, now_iso

MAX_ATTEMPTS = 8


class AlertNotFound(KeyError):
    pass


async def get_alert(client: aredis.Redis, alert_id: str) -> Alert | None:
    raw = await client.get(schema.alert(alert_id))
    return None if raw is None else loads(raw, Alert)


async def list_alerts(
    client: aredis.Redis,
    *,
    status: str | None = None,
    level: str | None = None,
    account: str | None = None,
    cluster: str | None = None,
    since_ms: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Alert], str | None]:
    """Newest first, filters ANDed; returns the page and the cursor of the next one.

    The cursor is the last index member returned: pages are exact under concurrent
    inserts (new alerts sort before the cursor and never shift later pages).
    """
    filters: tuple[tuple[Callable[[str], str], str | None], ...] = (
        (schema.alerts_by_status, status),
        (schema.alerts_by_level, level),
        (schema.alerts_by_account, account),
        (schema.alerts_by_cluster, cluster),
    )
    keys = [index(v) for index, v in filters if v is not None] or [schema.ALERTS_ALL]
    upper = f"({cursor}" if cursor else "+"
    lower = "-" if since_ms is None else f"[{since_ms:013d}"
    # members only (no withscores), as bytes: redis-py's reply type cannot tell
    members: list[bytes]
    if len(keys) == 1:
        members = cast(
            "list[bytes]",
            await client.zrange(keys[0], upper, lower, desc=True, bylex=True, offset=0, num=limit),
        )
    else:
        tmp = f"dg:tmp:alerts:{secrets.token_hex(8)}"
        async with client.pipeline(transaction=True) as pipe:
            pipe.zinterstore(tmp, keys, aggregate="MIN")
            pipe.zrange(tmp, upper, lower, desc=True, bylex=True, offset=0, num=limit)
            pipe.delete(tmp)
            _, members, _ = await pipe.execute()
    if not members:
        return [], None
    raws = await client.mget([schema.alert(schema.member_alert_id(m)) for m in members])
    alerts = [loads(r, Alert) for r in raws if r is not None]
    next_cursor = text(members[-1]) if len(members) == limit else None
    return alerts, next_cursor


async def account_history(
    client: aredis.Redis, account_id: str, limit: int
) -> tuple[list[dict[str, object]], list[str]]:
    """Feature history (oldest first, for a chart) and recent sample prompts."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.lrange(schema.features(account_id), 0, limit - 1)
        pipe.lrange(schema.prompts(account_id), 0, limit - 1)
        points, prompts = await pipe.execute()
    history = [orjson.loads(p) for p in reversed(points)]
    return history, [p.decode(errors="replace")[: schema.PROMPT_MAX_CHARS] for p in prompts]


async def acknowledge(
    client: aredis.Redis, alert_id: str, actor: str, assignee: str | None, note: str | None
) -> Alert:
    def change(alert: Alert) -> Alert:
        alert = lifecycle.transition(alert, "acknowledged", actor, now_iso(), note)
        return lifecycle.assign(alert, assignee or actor, actor, now_iso())

    return await _change(
        client,
        alert_id,
        change,
        lambda a: entry(actor, "alert.acknowledge", alert_id, assignee=a.assignee, note=note),
    )


async def review(
    client: aredis.Redis,
    alert_id: str,
    actor: str,
    verdict: lifecycle.Verdict,
    note: str | None,
) -> Alert:
    """Confirm or dismiss; writes one ``Label`` per account the alert is about."""
    status = lifecycle.VERDICT_STATUS[verdict]

    def labels(alert: Alert) -> list[Label]:
        accounts = [alert.subject_id] if alert.subject_type == "account" else alert.members
        return [
            Label(
                account_id=a,
                label=lifecycle.VERDICT_LABEL[verdict],
                alert_id=alert_id,
                features=alert.features,
                analyst=actor,
                note=note,
                at=alert.updated_at,
            )
            for a in accounts
        ]

    return await _change(
        client,
        alert_id,
        lambda a: lifecycle.transition(a, status, actor, now_iso(), note),
        lambda a: entry(
            actor,
            f"alert.{verdict}",
            alert_id,
            note=note,
            subject=f"{a.subject_type}:{a.subject_id}",
        ),
        labels,
    )


async def reassign(client: aredis.Redis, alert_id: str, actor: str, assignee: str | None) -> Alert:
    """Hand an open or acknowledged alert to someone else (None: unassigned)."""

    def change(alert: Alert) -> Alert:
        if alert.status not in lifecycle.OPEN_STATUSES:
            raise lifecycle.IllegalTransition(
                f"alert {alert_id} is {alert.status}; a closed alert cannot be reassigned"
            )
        return lifecycle.assign(alert, assignee, actor, now_iso())

    return await _change(
        client,
        alert_id,
        change,
        lambda a: entry(actor, "alert.assign", alert_id, assignee=assignee),
    )


async def add_note(client: aredis.Redis, alert_id: str, actor: str, note: str) -> Alert:
    return await _change(
        client,
        alert_id,
        lambda a: lifecycle.add_note(a, actor, now_iso(), note),
        lambda a: entry(actor, "alert.note", alert_id, note=note),
    )


async def _change(
    client: aredis.Redis,
    alert_id: str,
    change: Callable[[Alert], Alert],
    audit: Callable[[Alert], AuditEntry],
    labels: Callable[[Alert], list[Label]] | None = None,
) -> Alert:
    key = schema.alert(alert_id)
    for _ in range(MAX_ATTEMPTS):
        async with client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key, schema.ALERTS_OPEN)
                raw = await pipe.get(key)
                if raw is None:
                    raise AlertNotFound(alert_id)
                old = loads(raw, Alert)
                new = change(old)  # IllegalTransition propagates: nothing written
                field = schema.subject_field(new.subject_type, new.subject_id)
                pointer = await pipe.hget(schema.ALERTS_OPEN, field)
                pipe.multi()
                pipe.set(key, dumps(new))
                if new.status != old.status:
                    member = schema.index_member(new.created_at, new.alert_id)
                    pipe.zrem(schema.alerts_by_status(old.status), member)
                    pipe.zadd(schema.alerts_by_status(new.status), {member: 0})
                closed = new.status not in lifecycle.OPEN_STATUSES
                if closed and pointer is not None and text(pointer) == alert_id:
                    pipe.hdel(schema.ALERTS_OPEN, field)
                queue_audit(pipe, audit(new))
                for label in labels(new) if labels else ():
                    queue_label(pipe, label)
                pipe.publish(schema.ALERT_EVENTS_CHANNEL, schema.event_message("updated", new))
                await pipe.execute()
                return new
            except redis.WatchError:
                continue
    raise RuntimeError(f"alert {alert_id} kept changing under concurrent writers")
