"""Risk lookups (CONTRACT §4): the platform services' hot path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from distillguard.store.risk import get_risk, get_risks

from ..deps import ApiSettingsDep, RedisDep, RiskReader, invalid
from ..schemas import RiskBatchIn, RiskBatchOut, RiskOut, errors, from_record

router = APIRouter(prefix="/v1", tags=["risk"], responses=errors())

AccountPath = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/accounts/{account_id}/risk", response_model=RiskOut)
async def account_risk(account_id: AccountPath, client: RedisDep, _: RiskReader) -> RiskOut:
    """An account's current risk; an account never seen is 0.0 / `low`, not an error."""
    return from_record(RiskOut, await get_risk(client, account_id))  # type: ignore[no-any-return]


@router.post("/risk:batch", response_model=RiskBatchOut)
async def risk_batch(
    body: RiskBatchIn, client: RedisDep, settings: ApiSettingsDep, _: RiskReader
) -> RiskBatchOut:
    """Risks of up to 1,000 accounts in one call, in the order asked."""
    if len(body.account_ids) > settings.batch_max_ids:
        raise invalid("body", "account_ids",
                      f"at most {settings.batch_max_ids} account ids per call", None)
    risks = await get_risks(client, body.account_ids)
    return RiskBatchOut(results=[from_record(RiskOut, r) for r in risks])
