"""Risk lookups (CONTRACT §4): the platform services' hot path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from distillguard.records import AccountRisk, dumps
from distillguard.store.risk import get_risk_json, get_risks

from ..deps import ApiSettingsDep, RedisDep, RiskReader, invalid
from ..gate import GatedRoute
from ..schemas import RiskBatchIn, RiskBatchOut, RiskOut, errors, from_record

router = APIRouter(prefix="/v1", tags=["risk"], responses=errors(), route_class=GatedRoute)

AccountPath = Annotated[str, Path(min_length=1, max_length=128)]


@router.get(
    "/accounts/{account_id}/risk", response_model=RiskOut, responses={200: {"model": RiskOut}}
)
async def account_risk(account_id: AccountPath, client: RedisDep, _: RiskReader) -> Response:
    """An account's current risk; an account never seen is 0.0 / `low`, not an error.

    The stored record is the CONTRACT §4 document (``records.AccountRisk``), so it is
    sent as stored: no decode, validate and re-encode on the hottest path.
    """
    raw = await get_risk_json(client, account_id)
    if raw is None:
        raw = dumps(AccountRisk(account_id=account_id))
    return Response(raw, media_type="application/json")


@router.post("/risk:batch", response_model=RiskBatchOut)
async def risk_batch(
    body: RiskBatchIn, client: RedisDep, settings: ApiSettingsDep, _: RiskReader
) -> RiskBatchOut:
    """Risks of up to 1,000 accounts in one call, in the order asked."""
    if len(body.account_ids) > settings.batch_max_ids:
        raise invalid(
            "body", "account_ids", f"at most {settings.batch_max_ids} account ids per call"
        )
    risks = await get_risks(client, body.account_ids)
    return RiskBatchOut(results=[from_record(RiskOut, r) for r in risks])
