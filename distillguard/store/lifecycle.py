"""The alert lifecycle: which status changes are legal, and what each records.

``open -> acknowledged -> confirmed | dismissed``. Reviewing straight from ``open``
is allowed (the acknowledgement is implied: an analyst who has read the evidence
has acknowledged it); ``confirmed`` and ``dismissed`` are final. Pure functions on
``records.Alert`` so the rules are testable without Redis.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from distillguard.records import Alert, AlertStatus, HistoryEntry

Verdict = Literal["confirm", "dismiss"]

OPEN_STATUSES: frozenset[str] = frozenset({"open", "acknowledged"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "confirmed", "dismissed"}),
    "acknowledged": frozenset({"confirmed", "dismissed"}),
    "confirmed": frozenset(),
    "dismissed": frozenset(),
}
VERDICT_STATUS: dict[str, AlertStatus] = {"confirm": "confirmed", "dismiss": "dismissed"}
VERDICT_LABEL: dict[str, Literal["distiller", "benign"]] = {
    "confirm": "distiller",
    "dismiss": "benign",
}


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow (the API answers 409)."""


def transition(alert: Alert, to: AlertStatus, actor: str, at: str, note: str | None) -> Alert:
    """A copy of ``alert`` moved to ``to``, with a history entry.

    >>> a = Alert(alert_id="a1", subject_type="account", subject_id="x", risk=0.9,
    ...           level="critical", created_at="t0", updated_at="t0")
    >>> b = transition(a, "acknowledged", "ana", "t1", None)
    >>> b.status, b.history[-1].action, a.status
    ('acknowledged', 'acknowledged', 'open')
    >>> transition(b, "open", "ana", "t2", None)
    Traceback (most recent call last):
    ...
    distillguard.store.lifecycle.IllegalTransition: alert a1 is acknowledged; cannot become open
    """
    if to not in TRANSITIONS[alert.status]:
        raise IllegalTransition(f"alert {alert.alert_id} is {alert.status}; cannot become {to}")
    entry = HistoryEntry(at=at, actor=actor, action=to, note=note)
    return msgspec.structs.replace(alert, status=to, updated_at=at, history=[*alert.history, entry])


def add_note(alert: Alert, actor: str, at: str, note: str) -> Alert:
    entry = HistoryEntry(at=at, actor=actor, action="note", note=note)
    return msgspec.structs.replace(alert, updated_at=at, history=[*alert.history, entry])


def assign(alert: Alert, assignee: str | None, actor: str, at: str) -> Alert:
    entry = HistoryEntry(at=at, actor=actor, action="assigned", note=assignee)
    return msgspec.structs.replace(
        alert, assignee=assignee, updated_at=at, history=[*alert.history, entry]
    )
