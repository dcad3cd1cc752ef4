"""The audit log (admin): every analyst and admin action, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from distillguard.store.audit import read_audit

from ..deps import Admin, RedisDep, invalid
from ..gate import GatedRoute
from ..schemas import AuditOut, AuditPage, errors

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=errors(), route_class=GatedRoute)


@router.get("", response_model=AuditPage)
async def audit_log(
    client: RedisDep,
    _: Admin,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^\d{1,20}-\d{1,20}$", description="`next_cursor` of the previous page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    try:
        rows, next_cursor = await read_audit(client, limit, cursor)
    except ValueError as exc:
        raise invalid("query", "cursor", str(exc)) from exc
    return AuditPage(
        items=[
            AuditOut(
                id=i, at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail
            )
            for i, e in rows
        ],
        next_cursor=next_cursor,
    )
