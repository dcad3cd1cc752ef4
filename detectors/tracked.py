"""What the account pipeline keeps per account besides its behaviour features.

Risk and reasons of the last scoring, the scoring schedule, the open alert, sample
prompts (only for suspicious accounts), the organisation and the last request times
(for the cluster timeline). ``to_state`` /
``from_state`` turn it into a :class:`~distillguard.detectors.state.TrackedState`
(named, typed fields: a checkpoint is data, never code) and back.
"""

from __future__ import annotations

import math
from typing import Any

from distillguard.detectors import request_times as times_ring
from distillguard.detectors.alerts import OpenAlert
from distillguard.detectors.features.account import AccountState
from distillguard.detectors.state import OpenAlertState, TrackedState, as_state
from distillguard.records import Reason


class Tracked:
    """Everything the pipeline keeps about one account besides its behaviour state."""

    __slots__ = (
        "alert",
        "drained_risk",
        "first_alert_ts",
        "last_pop_ts",
        "last_scored_ts",
        "next_score_n",
        "org_id",
        "reasons",
        "request_times",
        "request_times_next",
        "risk",
        "samples",
        "signals",
        "state",
    )

    def __init__(self, org_id: str | None = None) -> None:
        self.state = AccountState()
        self.risk = 0.0
        self.reasons: list[Reason] = []
        #: each rule signal's own log-odds at the last scoring (``ExpertRules.
        #: explain_own``): captured when scored, so the linkage stage can ask whether
        #: a cluster's members extract without recomputing anything
        self.signals: dict[str, float] = {}
        self.next_score_n = 4
        self.last_scored_ts = -math.inf
        self.last_pop_ts = -math.inf
        self.drained_risk = 0.0
        self.alert: OpenAlert | None = None
        self.first_alert_ts: float | None = None
        self.samples: list[str] | None = None
        self.org_id = org_id
        #: the last requests' times, for the cluster timeline (``request_times``)
        self.request_times = times_ring.new_ring()
        self.request_times_next = 0

    def to_state(self) -> TrackedState:
        alert = self.alert
        return TrackedState(
            state=self.state.to_state(),
            risk=self.risk,
            reasons=list(self.reasons),
            signals=dict(self.signals),
            next_score_n=self.next_score_n,
            last_scored_ts=self.last_scored_ts,
            last_pop_ts=self.last_pop_ts,
            drained_risk=self.drained_risk,
            alert=None
            if alert is None
            else OpenAlertState(
                alert_id=alert.alert_id,
                created_ts=alert.created_ts,
                risk=alert.risk,
                events=alert.events,
                first_event_ts=alert.first_event_ts,
            ),
            first_alert_ts=self.first_alert_ts,
            samples=None if self.samples is None else list(self.samples),
            org_id=self.org_id,
            request_times=times_ring.to_bytes(self.request_times, self.request_times_next),
        )

    @classmethod
    def from_state(
        cls, data: TrackedState | dict[str, Any], request_times_kept: int | None = None
    ) -> Tracked:
        """Inverse of :meth:`to_state` (or its plain msgpack form); ValueError if malformed.

        ``request_times_kept``: the ring's size now, if it may have shrunk since the
        checkpoint (the newest times are kept).
        """
        data = as_state(data, TrackedState)
        t = cls(data.org_id)
        t.state = AccountState.from_state(data.state)
        t.risk = data.risk
        t.reasons = list(data.reasons)
        t.signals = dict(data.signals)
        t.next_score_n = data.next_score_n
        t.last_scored_ts = data.last_scored_ts
        t.last_pop_ts = data.last_pop_ts
        t.drained_risk = data.drained_risk
        a = data.alert
        if a is not None:
            t.alert = OpenAlert(a.alert_id, a.created_ts, a.risk, a.events, a.first_event_ts)
        t.first_alert_ts = data.first_alert_ts
        t.samples = None if data.samples is None else list(data.samples)
        # oldest first, so the next write (cursor 0) replaces the oldest
        t.request_times = times_ring.from_bytes(data.request_times, request_times_kept)
        return t
