"""``GET /v1/alerts/stream``: Server-Sent Events of new and updated alerts.

Each client gets its own Redis pub/sub subscription to ``dg:alerts:events`` (the
writer publishes inside the batch's transaction, so an event is never sent for an
alert that was not stored). If Redis goes away the stream ends; ``EventSource``
reconnects by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from distillguard.store.connection import UNAVAILABLE
from distillguard.store.schema import ALERT_EVENTS_CHANNEL

from ..deps import Analyst, RedisDep
from ..gate import GatedRoute
from ..schemas import errors

router = APIRouter(prefix="/v1", tags=["alerts"], responses=errors(), route_class=GatedRoute)


async def _redis_up(client: RedisDep) -> None:
    """PING first: with Redis down the caller gets a 503, not an empty 200 stream."""
    await client.ping()


@router.get("/alerts/stream", response_class=EventSourceResponse, dependencies=[Depends(_redis_up)])
async def alert_stream(
    request: Request, client: RedisDep, _: Analyst
) -> AsyncIterator[ServerSentEvent]:
    """Events `created` / `updated`; `data` is `{"event": ..., "alert": {...}}`, `id` the
    alert id. A `: ready` comment is sent once the subscription is live."""
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(ALERT_EVENTS_CHANNEL)
        yield ServerSentEvent(comment="ready", retry=2000)
        while not await request.is_disconnected():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            data = message["data"].decode()
            try:
                parsed = orjson.loads(data)
                kind, alert_id = str(parsed["event"]), str(parsed["alert"]["alert_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # not ours; a stray publisher must not break the stream
            yield ServerSentEvent(raw_data=data, event=kind, id=alert_id)
    except UNAVAILABLE:
        return
    finally:
        await pubsub.aclose()
