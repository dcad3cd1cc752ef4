"""What the account pipeline keeps per account besides its behaviour features.

Risk and reasons of the last scoring, the scoring schedule, the open alert, sample
prompts (only for suspicious accounts) and the organisation. ``to_state`` /
``from_state`` turn it into plain values for msgpack checkpoints and back, checking
shapes and types on the way in: a checkpoint is data, never code.
"""

from __future__ import annotations

import math
from typing import Any

from distillguard.detectors.alerts import OpenAlert
from distillguard.detectors.features.account import AccountState

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
        "risk",
        "samples",
        "state",
    )

    def __init__(self, org_id: str | None = None) -> None:
        self.state = AccountState()
        self.risk = 0.0
        self.reasons: list[Reason] = []
        self.next_score_n = 4
        self.last_scored_ts = -math.inf
        self.last_pop_ts = -math.inf
        self.drained_risk = 0.0
        self.alert: OpenAlert | None = None
        self.first_alert_ts: float | None = None
        self.samples: list[str] | None = None
        self.org_id = org_id

    def to_state(self) -> list[Any]:
        alert = self.alert
        return [
            self.state.to_state(),
            self.risk,
            [[r.signal, r.value, r.population_percentile, r.detail] for r in self.reasons],
            self.next_score_n,
            _finite(self.last_scored_ts),
            _finite(self.last_pop_ts),
            self.drained_risk,
            None
            if alert is None
            else [alert.alert_id, alert.created_ts, alert.risk, alert.events, alert.first_event_ts],
            self.first_alert_ts,
            self.samples,
            self.org_id,
        ]

    @classmethod
    def from_state(cls, values: list[Any]) -> Tracked:
        if not isinstance(values, list) or len(values) != 11:
            raise ValueError("tracked account state must be a list of 11 values")
        (
            state,
            risk,
            reasons,
            next_n,
            scored_ts,
            pop_ts,
            drained,
            alert,
            first_alert,
            samples,
            org_id,
        ) = values
        t = cls(org_id if isinstance(org_id, str) else None)
        t.state = AccountState.from_state(state)
        t.risk = float(risk)
        t.reasons = [
            Reason(signal=str(s), value=float(v), population_percentile=p, detail=d)
            for s, v, p, d in reasons
        ]
        t.next_score_n = int(next_n)
        t.last_scored_ts = -math.inf if scored_ts is None else float(scored_ts)
        t.last_pop_ts = -math.inf if pop_ts is None else float(pop_ts)
        t.drained_risk = float(drained)
        if alert is not None:
            aid, created, arisk, events, first_ts = alert
            t.alert = OpenAlert(
                str(aid), float(created), float(arisk), int(events), float(first_ts)
            )
        t.first_alert_ts = None if first_alert is None else float(first_alert)
        t.samples = None if samples is None else [str(s) for s in samples]
        return t


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
