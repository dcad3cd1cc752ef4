"""How a new detection meets the store's alerts: pure functions, no I/O.

The writer (``store.writer``) reads what is stored, asks these functions what the
batch should become, and writes the answer; keeping the decisions here makes them
testable without Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from distillguard.records import Alert, HistoryEntry
from distillguard.store import schema
from distillguard.store.models import Suppression

DETECTOR_ACTOR = "detector"
MAX_SAMPLE_PROMPTS = 5


def truncate_prompts(prompts: Iterable[str], limit: int = MAX_SAMPLE_PROMPTS) -> list[str]:
    """At most ``limit`` prompts of at most 500 characters: enough to judge, cheap to ship.

    >>> [len(p) for p in truncate_prompts(["x" * 900, "short"])]
    [500, 5]
    """
    return [p[: schema.PROMPT_MAX_CHARS] for p in list(prompts)[:limit]]


def suppressed_by(alert: Alert, rules: Sequence[Suppression], now: float) -> Suppression | None:
    """The first active rule that silences this alert, if any.

    An account rule matches an alert about that account; an org rule any alert whose
    ``org_id`` is the org; a cluster rule the cluster's alert and its members' alerts.
    """
    for rule in rules:
        if not rule.active(now):
            continue
        if rule.scope == "account" and alert.subject_type == "account":
            hit = alert.subject_id == rule.value
        elif rule.scope == "org":
            hit = alert.org_id == rule.value
        elif rule.scope == "cluster":
            hit = alert.cluster_id == rule.value or (
                alert.subject_type == "cluster" and alert.subject_id == rule.value
            )
        else:
            hit = False
        if hit:
            return rule
    return None


def merge_update(existing: Alert, incoming: Alert, at: str) -> Alert:
    """The open alert ``existing`` updated with a newer detection of the same subject.

    Keeps identity, status, assignee and history; takes the detector's current view
    of risk, reasons and evidence; notes in the history when the risk rose by as much
    as the note shows (3 decimals). A rise of 0.9996 -> 0.9999 is not evidence an
    analyst can see, and ``risk 1.000 -> 1.000`` entries only bury the ones that
    matter; they were also the part of the history that depended on batch timing
    (two runs whose batches split an account's updates differently noted different
    numbers of them).

    >>> old = Alert(alert_id="a1", subject_type="account", subject_id="x", risk=0.7,
    ...             level="high", status="acknowledged", created_at="t0", updated_at="t0")
    >>> new = Alert(alert_id="a9", subject_type="account", subject_id="x", risk=0.95,
    ...             level="critical", created_at="t1", updated_at="t1")
    >>> m = merge_update(old, new, "t1")
    >>> m.alert_id, m.status, m.risk, m.level, [h.action for h in m.history]
    ('a1', 'acknowledged', 0.95, 'critical', ['evidence grew'])
    >>> m.history[-1].note
    'risk 0.700 -> 0.950'
    >>> near = merge_update(m, msgspec.structs.replace(new, risk=0.9996), "t2")
    >>> creep = merge_update(near, msgspec.structs.replace(new, risk=0.9999), "t3")
    >>> creep.risk, [h.note for h in creep.history]
    (0.9999, ['risk 0.700 -> 0.950', 'risk 0.950 -> 1.000'])
    """
    history = existing.history
    before, after = f"{existing.risk:.3f}", f"{incoming.risk:.3f}"
    if incoming.risk > existing.risk and after != before:
        note = f"risk {before} -> {after}"
        history = [
            *history,
            HistoryEntry(at=at, actor=DETECTOR_ACTOR, action="evidence grew", note=note),
        ]
    return msgspec.structs.replace(
        existing,
        risk=incoming.risk,
        level=incoming.level,
        reasons=incoming.reasons or existing.reasons,
        evidence=incoming.evidence or existing.evidence,
        members=incoming.members or existing.members,
        features=incoming.features or existing.features,
        sample_prompts=truncate_prompts(incoming.sample_prompts) or existing.sample_prompts,
        first_event_ts=existing.first_event_ts or incoming.first_event_ts,
        last_event_ts=incoming.last_event_ts or existing.last_event_ts,
        cluster_id=incoming.cluster_id or existing.cluster_id,
        org_id=incoming.org_id or existing.org_id,
        updated_at=at,
        detected_at=existing.detected_at or at,
        history=history,
    )


def as_new(incoming: Alert, at: str) -> Alert:
    created = incoming.created_at
    try:
        schema.epoch_ms(created)
    except (ValueError, TypeError):
        created = at  # a detector's unparsable stamp must not lose the alert
    return msgspec.structs.replace(
        incoming,
        status="open",
        created_at=created,
        detected_at=at,
        updated_at=incoming.updated_at or at,
        sample_prompts=truncate_prompts(incoming.sample_prompts),
    )
