"""When an account's risk becomes an alert, and when an open alert is worth updating.

Thresholds decide, scorers only score (river keeps "score" and "decide" apart the
same way). One alert per account while it is open: analysts should see one case
that grows, not a page of duplicates. An open alert is re-raised as an *update*
only when the evidence has grown substantially: the risk rose by ``realert_delta``
or the account has sent twice as many events since the last raise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from distillguard.records import Alert, HistoryEntry, Reason, iso, level_for

SAMPLE_PROMPTS = 5
SAMPLE_CHARS = 500


@dataclass(slots=True)
class OpenAlert:
    """What the pipeline remembers about an account's open alert."""

    alert_id: str
    created_ts: float
    risk: float
    events: int
    first_event_ts: float


def alert_id_for(account_id: str, created_ts: float) -> str:
    """Deterministic id: a replay of the same events names its alerts the same way.

    >>> alert_id_for("acct_1", 1_790_000_000.0) == alert_id_for("acct_1", 1_790_000_000.0)
    True
    >>> alert_id_for("acct_1", 1.0).startswith("alr_acct_")
    True
    """
    digest = zlib.crc32(f"{account_id}|{created_ts:.3f}".encode()) & 0xFFFFFFFF
    return f"alr_acct_{digest:08x}"


class AlertPolicy:
    """Open, update or stay quiet, given an account's new risk.

    Parameters
    ----------
    threshold
        Risk at which an alert opens.
    realert_delta
        Risk growth that makes an open alert worth an update.
    min_events
        No alert on fewer events than this: too little evidence to show an analyst.
    min_span_s
        No first alert before the account's activity spans this much event time:
        a burst of a few minutes is what benchmark runs and retry storms look like,
        and persistence is part of the evidence.

    Examples
    --------
    >>> policy = AlertPolicy(threshold=0.7, realert_delta=0.1, min_events=10, min_span_s=600)
    >>> policy.decide(None, risk=0.9, events=5, span_s=900)
    'none'
    >>> policy.decide(None, risk=0.9, events=500, span_s=120)
    'none'
    >>> policy.decide(None, risk=0.75, events=50, span_s=900)
    'open'
    >>> current = OpenAlert("a1", 0.0, risk=0.75, events=50, first_event_ts=0.0)
    >>> policy.decide(current, risk=0.8, events=60, span_s=900)
    'none'
    >>> policy.decide(current, risk=0.9, events=60, span_s=900)
    'update'
    >>> policy.decide(current, risk=0.76, events=100, span_s=900)
    'update'
    """

    def __init__(
        self,
        threshold: float = 0.7,
        realert_delta: float = 0.1,
        min_events: int = 10,
        min_span_s: float = 0.0,
    ) -> None:
        self.threshold = threshold
        self.realert_delta = realert_delta
        self.min_events = min_events
        self.min_span_s = min_span_s

    def decide(self, current: OpenAlert | None, *, risk: float, events: int, span_s: float) -> str:
        if risk < self.threshold or events < self.min_events:
            return "none"
        if current is None:
            return "open" if span_s >= self.min_span_s else "none"
        if risk >= current.risk + self.realert_delta or events >= 2 * current.events:
            return "update"
        return "none"


def build_alert(
    account_id: str,
    current: OpenAlert,
    *,
    risk: float,
    reasons: list[Reason],
    now: float,
    last_event_ts: float,
    features: dict[str, float],
    sample_prompts: list[str],
    org_id: str | None,
    action: str,
) -> Alert:
    """The alert record for an account (CONTRACT-shaped, see ``records.Alert``)."""
    at = iso(now)
    return Alert(
        alert_id=current.alert_id,
        subject_type="account",
        subject_id=account_id,
        risk=round(risk, 4),
        level=level_for(risk),
        reasons=reasons,
        created_at=iso(current.created_ts),
        updated_at=at,
        first_event_ts=iso(current.first_event_ts),
        last_event_ts=iso(last_event_ts),
        features={k: round(v, 6) for k, v in features.items()},
        sample_prompts=[p[:SAMPLE_CHARS] for p in sample_prompts[-SAMPLE_PROMPTS:]],
        org_id=org_id,
        history=[HistoryEntry(at=at, actor="detector", action=action)],
    )
