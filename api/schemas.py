"""HTTP request and response models (pydantic), separate from the storage records.

Storage shapes live in ``distillguard.records`` / ``distillguard.store.models``;
these are what the OpenAPI document promises. ``from_record`` helpers convert.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

_M = TypeVar("_M", bound=BaseModel)

Level = Literal["low", "medium", "high", "critical"]
AlertStatus = Literal["open", "acknowledged", "confirmed", "dismissed"]
Role = Literal["service", "analyst", "admin"]

#: Every datetime the API accepts lies in [EARLIEST, LATEST): anything outside is a
#: typo or a probe (year 0001, 9999), and far dates overflow the store's epoch stamps.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2101, 1, 1, tzinfo=UTC)
#: A suppression silences alerts: one meant to outlive this is a permanent rule, and
#: should say so (no expiry) rather than hide behind a date nobody will revisit.
MAX_SUPPRESSION = timedelta(days=5 * 365)


def _in_window(value: datetime) -> datetime:
    # compared before converting: astimezone() itself overflows near years 1 and 9999
    if not EARLIEST <= value < LATEST:
        raise ValueError("must lie in the years 2000 to 2100 (UTC)")
    return value.astimezone(UTC)


def _ahead(value: datetime) -> datetime:
    now = datetime.now(UTC)
    if value <= now:
        raise ValueError("must be in the future (delete the rule to end it now)")
    if value > now + MAX_SUPPRESSION:
        raise ValueError("must be at most 5 years ahead (omit it for a permanent rule)")
    return value


#: The one datetime input type: RFC 3339 with an offset, within 2000..2100, as UTC.
SaneDatetime = Annotated[AwareDatetime, AfterValidator(_in_window)]
#: A suppression's expiry: a SaneDatetime in the future, at most 5 years ahead.
SuppressionExpiry = Annotated[SaneDatetime, AfterValidator(_ahead)]


def from_record(model: type[_M], record: msgspec.Struct, **extra: Any) -> _M:
    return model.model_validate({**msgspec.to_builtins(record), **extra})


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Out):
    """Every error body."""

    detail: Any


class ReasonOut(_Out):
    signal: str
    value: float
    population_percentile: float | None = None
    detail: str | None = None


class RiskOut(_Out):
    """CONTRACT §4."""

    account_id: str
    risk: float = Field(ge=0.0, le=1.0)
    level: Level
    reasons: list[ReasonOut]
    cluster_id: str | None = None
    updated_at: str | None = None


class RiskBatchIn(_In):
    account_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=1000, description="Up to 1,000 account ids; answered in order."
    )


class RiskBatchOut(_Out):
    results: list[RiskOut]


class EvidenceOut(_Out):
    kind: str
    value: str
    weight: float
    accounts: list[str]


class HistoryOut(_Out):
    at: str
    actor: str
    action: str
    note: str | None = None


class AlertOut(_Out):
    alert_id: str
    subject_type: Literal["account", "cluster"]
    subject_id: str
    risk: float
    level: Level
    status: AlertStatus
    reasons: list[ReasonOut]
    created_at: str = Field(description="Event time of the detection.")
    updated_at: str
    detected_at: str | None = Field(
        None, description="Wall-clock time the store first recorded the alert."
    )
    first_event_ts: str | None = None
    last_event_ts: str | None = None
    cluster_id: str | None = None
    members: list[str]
    org_id: str | None = None
    assignee: str | None = None


class FeaturePoint(_Out):
    ts: str
    features: dict[str, float]


class AlertDetailOut(AlertOut):
    evidence: list[EvidenceOut]
    features: dict[str, float]
    history: list[HistoryOut]
    sample_prompts: list[str] = Field(description="At most 500 characters each.")
    feature_history: list[FeaturePoint] = Field(
        description="The account's feature snapshots, oldest first, for a chart."
    )


class AlertPage(_Out):
    items: list[AlertOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class AckIn(_In):
    assignee: str | None = Field(
        None, max_length=200, description="Defaults to the caller's key name."
    )
    note: str | None = Field(None, max_length=10_000)


class AssignIn(_In):
    assignee: str | None = Field(max_length=200, description="null: unassigned.")


class ReviewIn(_In):
    label: Literal["confirm", "dismiss"] = Field(
        description="confirm: a distiller (label `distiller`); dismiss: benign."
    )
    note: str | None = Field(None, max_length=10_000)


class NoteIn(_In):
    note: str = Field(min_length=1, max_length=10_000)


class ClusterOut(_Out):
    cluster_id: str
    members: list[str]
    risk: float
    level: Level
    evidence: list[EvidenceOut]
    first_alert_ts: str | None = None
    updated_at: str | None = None


class ClusterList(_Out):
    items: list[ClusterOut]


class ClusterDetailOut(ClusterOut):
    member_risks: list[RiskOut] = Field(description="Each member's current risk.")


class MemberRequestsOut(_Out):
    account_id: str
    times: list[int] = Field(description="Last request times, epoch seconds, ascending.")
    requests: int = Field(description="Every request the account made while tracked.")


class ClusterTimelineOut(_Out):
    cluster_id: str
    members: list[MemberRequestsOut] = Field(
        description="The most active members, ordered by their first kept request."
    )
    hidden: int = Field(description="Members not shown (over the cap, or no times kept).")
    updated_at: str | None = None


class SuppressionIn(_In):
    scope: Literal["account", "org", "cluster"]
    value: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    expires_at: SuppressionExpiry | None = Field(
        None,
        description="RFC 3339 with offset, in the future, at most 5 years ahead; "
        "omit for no expiry.",
    )


class SuppressionPatch(_In):
    reason: str | None = Field(None, min_length=1, max_length=2000)
    expires_at: SuppressionExpiry | None = Field(
        None, description="RFC 3339 with offset, in the future, at most 5 years ahead."
    )
    clear_expiry: bool = False


class SuppressionOut(_Out):
    suppression_id: str
    scope: Literal["account", "org", "cluster"]
    value: str
    reason: str
    created_by: str
    created_at: str
    expires_at: str | None = None
    active: bool


class SuppressionList(_Out):
    items: list[SuppressionOut]


class KeyIn(_In):
    role: Role
    name: str = Field(min_length=1, max_length=200)


class KeyOut(_Out):
    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="The API key. Shown once; only its hash is stored.")


class KeyList(_Out):
    items: list[KeyOut]


class AuditOut(_Out):
    id: str
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(_Out):
    items: list[AuditOut]
    next_cursor: str | None = None


class Health(_Out):
    status: str


_ERROR_TEXT = {
    400: "Malformed request (e.g. a body that is not UTF-8 JSON).",
    401: "Missing or invalid API key.",
    403: "The key's role may not call this endpoint.",
    404: "Not found.",
    409: "Conflict: an illegal alert status change, or a key revoking itself.",
    413: "Request body larger than `api.max_body_bytes`.",
    429: "Rate limit exceeded (the key's, or the client address's for requests without a "
    "valid key); see `Retry-After`.",
    503: "Redis unreachable; retry shortly.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error codes a route can answer (auth ones always)."""
    return {
        c: {
            "model": Problem,
            "description": _ERROR_TEXT[c],
            # explicit, so routes streaming text (SSE, metrics) still document JSON errors
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for c in (400, 401, 403, 413, 429, 503, *codes)
    }
