"""The review queue: list, read, acknowledge, review, annotate alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from distillguard.records import Alert
from distillguard.store import alerts as store

from ..deps import Analyst, ApiSettingsDep, RedisDep
from ..gate import GatedRoute
from ..schemas import (
    AckIn,
    AlertDetailOut,
    AlertOut,
    AlertPage,
    AlertStatus,
    AssignIn,
    Level,
    NoteIn,
    ReviewIn,
    SaneDatetime,
    errors,
    from_record,
)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=errors(), route_class=GatedRoute)

AlertId = Annotated[str, Path(min_length=1, max_length=200)]
Text = Annotated[str | None, Query(min_length=1, max_length=128)]
MAX_PROMPTS = 10


@router.get("", response_model=AlertPage)
async def list_alerts(
    client: RedisDep,
    settings: ApiSettingsDep,
    _: Analyst,
    status: AlertStatus | None = None,
    level: Level | None = None,
    account: Text = None,
    cluster: Text = None,
    since: Annotated[
        SaneDatetime | None,
        Query(description="Created at or after (RFC 3339 with offset, years 2000..2100)."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=300, description="`next_cursor` of the previous page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    """Alerts newest first, filters combined with AND, cursor-paginated."""
    since_ms = None if since is None else int(since.timestamp() * 1000)
    items, next_cursor = await store.list_alerts(
        client,
        status=status,
        level=level,
        account=account,
        cluster=cluster,
        since_ms=since_ms,
        cursor=cursor,
        limit=min(limit, settings.page_max),
    )
    return AlertPage(items=[from_record(AlertOut, a) for a in items], next_cursor=next_cursor)


@router.get("/{alert_id}", response_model=AlertDetailOut, responses=errors(404))
async def get_alert(alert_id: AlertId, client: RedisDep, _: Analyst) -> AlertDetailOut:
    """One alert with its evidence, history, feature history (for a chart) and sample prompts."""
    alert = await store.get_alert(client, alert_id)
    if alert is None:
        raise store.AlertNotFound(alert_id)
    return await _detail(client, alert)


@router.post("/{alert_id}/ack", response_model=AlertDetailOut, responses=errors(404, 409))
async def acknowledge(
    alert_id: AlertId, client: RedisDep, caller: Analyst, body: AckIn | None = None
) -> AlertDetailOut:
    """open -> acknowledged, assigned to `assignee` (default: the caller)."""
    body = body or AckIn()
    alert = await store.acknowledge(client, alert_id, caller.actor, body.assignee, body.note)
    return await _detail(client, alert)


@router.post("/{alert_id}/review", response_model=AlertDetailOut, responses=errors(404, 409))
async def review(
    alert_id: AlertId, body: ReviewIn, client: RedisDep, caller: Analyst
) -> AlertDetailOut:
    """Confirm or dismiss. Writes a label per account (with the alert's feature snapshot)
    to the detectors' feedback stream, and an audit entry."""
    alert = await store.review(client, alert_id, caller.actor, body.label, body.note)
    return await _detail(client, alert)


@router.post("/{alert_id}/assign", response_model=AlertDetailOut, responses=errors(404, 409))
async def assign(
    alert_id: AlertId, body: AssignIn, client: RedisDep, caller: Analyst
) -> AlertDetailOut:
    """Reassign an open or acknowledged alert (`assignee: null` unassigns)."""
    alert = await store.reassign(client, alert_id, caller.actor, body.assignee)
    return await _detail(client, alert)


@router.post("/{alert_id}/notes", response_model=AlertDetailOut, responses=errors(404))
async def add_note(
    alert_id: AlertId, body: NoteIn, client: RedisDep, caller: Analyst
) -> AlertDetailOut:
    """Append a note to the alert's history (any status)."""
    alert = await store.add_note(client, alert_id, caller.actor, body.note)
    return await _detail(client, alert)


async def _detail(client: RedisDep, alert: Alert) -> AlertDetailOut:
    history: list[dict[str, object]] = []
    prompts = list(alert.sample_prompts)
    if alert.subject_type == "account":
        history, stored = await store.account_history(client, alert.subject_id, 200)
        prompts.extend(p for p in stored if p not in prompts)
    return from_record(
        AlertDetailOut,
        alert,
        feature_history=history,
        sample_prompts=[p[:500] for p in prompts[:MAX_PROMPTS]],
    )
