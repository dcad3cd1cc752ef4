"""Records the detectors write and the API serves: one definition both sides import.

Stored in Redis as JSON (msgspec), published on ``abuse-alerts`` as JSON. Shapes
follow CONTRACT §4 for risk; alerts, clusters and labels extend it. The API keeps its
own pydantic response models (``api/schemas.py``) so that storage and HTTP can evolve
separately; this module is the storage/wire shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, TypeVar

import msgspec

Level = Literal["low", "medium", "high", "critical"]
AlertStatus = Literal["open", "acknowledged", "confirmed", "dismissed"]
SubjectType = Literal["account", "cluster"]
LabelValue = Literal["distiller", "benign"]
_T = TypeVar("_T")

#: Lower bounds of each level on the risk scale; one place, used by every scorer.
LEVEL_FLOORS: tuple[tuple[float, Level], ...] = (
    (0.9, "critical"),
    (0.7, "high"),
    (0.4, "medium"),
    (0.0, "low"),
)


def level_for(risk: float) -> Level:
    """The level of a risk in [0, 1].

    >>> level_for(0.95), level_for(0.75), level_for(0.5), level_for(0.1)
    ('critical', 'high', 'medium', 'low')
    """
    for floor, level in LEVEL_FLOORS:
        if risk >= floor:
            return level
    return "low"


def iso(ts: float) -> str:
    """Epoch seconds to RFC 3339 UTC with a ``Z``, as every record carries times."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Reason(msgspec.Struct, kw_only=True):
    """Why a score is high: one signal, its value, and where it sits in the population."""

    signal: str
    value: float
    population_percentile: float | None = None
    detail: str | None = None


class AccountRisk(msgspec.Struct, kw_only=True):
    """CONTRACT §4: what a platform service gets for one account."""

    account_id: str
    risk: float = 0.0
    level: Level = "low"
    reasons: list[Reason] = msgspec.field(default_factory=list)
    cluster_id: str | None = None
    updated_at: str | None = None


class Evidence(msgspec.Struct, kw_only=True):
    """Something accounts share (payment, /24, template, synchronised bursts...)."""

    kind: str
    value: str
    weight: float
    accounts: list[str] = msgspec.field(default_factory=list)


class HistoryEntry(msgspec.Struct, kw_only=True):
    """One change to an alert: by the detector (evidence grew) or by an analyst."""

    at: str
    actor: str
    action: str
    note: str | None = None


class Alert(msgspec.Struct, kw_only=True):
    """An alert about one account or one cluster; at most one open per subject."""

    alert_id: str
    subject_type: SubjectType
    subject_id: str
    risk: float
    level: Level
    reasons: list[Reason] = msgspec.field(default_factory=list)
    status: AlertStatus = "open"
    #: event time of the detection (a replay of last week says last week)
    created_at: str
    updated_at: str
    #: wall-clock time the store first recorded it: when an analyst could have known
    detected_at: str | None = None
    #: the event-time span of the activity the alert covers
    first_event_ts: str | None = None
    last_event_ts: str | None = None
    cluster_id: str | None = None
    members: list[str] = msgspec.field(default_factory=list)
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    features: dict[str, float] = msgspec.field(default_factory=dict)
    sample_prompts: list[str] = msgspec.field(default_factory=list)
    org_id: str | None = None
    assignee: str | None = None
    history: list[HistoryEntry] = msgspec.field(default_factory=list)


class Cluster(msgspec.Struct, kw_only=True):
    """A set of coordinated accounts and the evidence that ties them."""

    cluster_id: str
    members: list[str]
    risk: float
    level: Level
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    first_alert_ts: str | None = None
    updated_at: str | None = None


class MemberRequests(msgspec.Struct, kw_only=True):
    """One cluster member's last requests, for the timeline row the console draws."""

    account_id: str
    #: epoch seconds (whole), ascending: the last ``detectors.request_times_kept``
    times: list[int]
    #: every request the account made while tracked (``times`` may be only the last few)
    requests: int


class ClusterTimeline(msgspec.Struct, kw_only=True):
    """A cluster's members' requests on one time axis: the picture that shows synchrony.

    Stored apart from :class:`Cluster` (``dg:timeline:{cluster_id}``) because the
    cluster list reads every cluster record and would carry thousands of times each.
    """

    cluster_id: str
    #: the most active members (most requests first when over the cap), in the order
    #: of their first kept request, so a fleet started together stacks up
    members: list[MemberRequests] = msgspec.field(default_factory=list)
    #: members not shown: over ``detectors.timeline_members``, or no times kept here
    hidden: int = 0
    updated_at: str | None = None


class Raised(msgspec.Struct, kw_only=True):
    """One thing that lifts an account above its own risk: its cluster, or a case an
    analyst confirmed around it."""

    risk: float
    reason: Reason
    cluster_id: str | None = None


class ClusterRisk(msgspec.Struct, kw_only=True):
    """What the cluster stage knows of one account: the risks that lift it.

    Written by ``distillguard worker --stage cluster`` next to the account stage's own
    :class:`AccountRisk` (two writers, two keys); the risk lookup joins them with
    :func:`combine_risk`, the function the single-process pipeline uses itself.
    """

    account_id: str
    raised: list[Raised] = msgspec.field(default_factory=list)
    updated_at: str | None = None


def combine_risk(base: AccountRisk, raised: list[Raised], updated_at: str | None) -> AccountRisk:
    """The account's reported risk: its own, or the highest of what lifts it, with every
    reason (the deciding ones first) and the cluster that speaks for it.

    >>> own = AccountRisk(account_id="a", risk=0.2, reasons=[Reason(signal="s", value=1.0)])
    >>> hydra = Raised(risk=0.8, reason=Reason(signal="cluster_membership", value=0.8),
    ...                cluster_id="clu_1")
    >>> r = combine_risk(own, [hydra], None)
    >>> r.risk, r.level, r.cluster_id, [x.signal for x in r.reasons]
    (0.8, 'high', 'clu_1', ['cluster_membership', 's'])
    >>> combine_risk(own, [], None) is own
    True
    """
    if not raised:
        return base
    ranked = sorted(raised, key=lambda r: -r.risk)
    top = ranked[0].risk
    cluster_id = next((r.cluster_id for r in ranked if r.cluster_id is not None), None)
    if top <= base.risk:
        reasons = [*base.reasons, *(r.reason for r in ranked)]
        risk = base.risk
    else:
        reasons = [*(r.reason for r in ranked), *base.reasons]
        risk = top
    return AccountRisk(
        account_id=base.account_id,
        risk=risk,
        level=level_for(risk),
        reasons=reasons,
        cluster_id=cluster_id,
        updated_at=base.updated_at or updated_at,
    )


class Label(msgspec.Struct, kw_only=True):
    """An analyst's verdict on an account, as the detectors learn it.

    Carries the feature snapshot the alert was raised on, so a detector can learn
    from the label without looking anything up.
    """

    account_id: str
    label: LabelValue
    alert_id: str | None = None
    features: dict[str, float] = msgspec.field(default_factory=dict)
    analyst: str | None = None
    note: str | None = None
    at: str | None = None


def dumps(record: msgspec.Struct) -> bytes:
    return _ENC.encode(record)


def loads(data: bytes | str, kind: type[_T]) -> _T:
    return msgspec.json.decode(data, type=kind)


_ENC = msgspec.json.Encoder()
