"""The audit log: an append-only Redis stream of every analyst and admin action.

Entries are appended inside the same transaction as the change they describe, so
the log cannot miss an action that happened nor record one that did not.
"""

from __future__ import annotations

from typing import Any, cast

import redis
import redis.asyncio as aredis

from distillguard.records import dumps, loads
from distillguard.store.models import AuditEntry, now_iso
from distillguard.store.schema import AUDIT_STREAM, STREAM_MAXLEN


def entry(actor: str, action: str, target: str, **detail: Any) -> AuditEntry:
    return AuditEntry(
        at=now_iso(),
        actor=actor,
        action=action,
        target=target,
        detail={k: v for k, v in detail.items() if v is not None},
    )


def queue_audit(pipe: Any, item: AuditEntry) -> None:
    """Queue the append on a (sync or async) pipeline, inside the caller's transaction."""
    pipe.xadd(AUDIT_STREAM, {"entry": dumps(item)}, maxlen=STREAM_MAXLEN, approximate=True)


async def read_audit(
    client: aredis.Redis, count: int = 100, before: str | None = None
) -> tuple[list[tuple[str, AuditEntry]], str | None]:
    """Newest first: ``count`` entries older than stream id ``before``, and the next cursor."""
    upper = f"({before}" if before else "+"
    try:
        # (id, fields) pairs of bytes: redis-py's reply type also allows None and str
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await client.xrevrange(AUDIT_STREAM, max=upper, min="-", count=count),
        )
    except redis.exceptions.ResponseError as exc:  # e.g. "(0-0", or past 2**64
        raise ValueError(f"invalid audit cursor {before!r}") from exc
    out = [(i.decode(), loads(f[b"entry"], AuditEntry)) for i, f in rows]
    return out, (out[-1][0] if len(out) == count else None)
