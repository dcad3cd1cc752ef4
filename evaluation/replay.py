"""Offline replay (CONTRACT §3): the streaming detectors over a file, in file order.

Generic over :class:`~distillguard.detectors.pipeline.Pipeline`: whatever
``build_pipeline`` returns is fed every valid event with event time, exactly as the
worker would, minus Kafka and Redis: the same decoder, the same event-time bounds
(the pipeline's clock judges each event), the same per-account ``event_id``
de-duplication. A file in time order is the order the worker's partition merge
processes (``distillguard.stream.merge``), so live and replay agree. Bad lines are
counted (with reasons), never fatal. ``events_before_first_alert`` counts the
account's events processed before the event whose processing raised the first alert
naming it (account alert, or a cluster alert listing it in ``members``); 0 means
caught on its first request.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillguard.detectors.pipeline import Pipeline
from distillguard.events import EventDecoder, InvalidEvent, Limits, RequestEvent
from distillguard.records import Alert, Cluster, iso, level_for
from distillguard.settings import Settings
from distillguard.stream.dedup import DedupWindow, dedup_key

DRAIN_EVERY = 20_000


@dataclass(slots=True)
class AccountOutcome:
    """What replay learnt about one account; ``to_json`` is the CONTRACT §3 entry."""

    risk: float = 0.0
    level: str = "low"
    first_alert_ts: float | None = None
    events_before_first_alert: int | None = None
    cluster_id: str | None = None
    events: int = 0
    first_event_ts: float = 0.0
    last_event_ts: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "risk": round(self.risk, 6),
            "level": self.level,
            "first_alert_ts": None if self.first_alert_ts is None else iso(self.first_alert_ts),
            "events_before_first_alert": self.events_before_first_alert,
            "cluster_id": self.cluster_id,
        }


@dataclass(slots=True)
class ClusterOutcome:
    cluster_id: str
    members: list[str]
    risk: float
    first_alert_ts: float | str | None = None
    #: the members its latest alert named (an alert names only the members whose own
    #: behaviour looks like extraction; the rest stay members, unalerted)
    named: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        ts = self.first_alert_ts
        return {
            "cluster_id": self.cluster_id,
            "members": sorted(self.members),
            "risk": round(self.risk, 6),
            "first_alert_ts": iso(ts) if isinstance(ts, float) else ts,
            "named": sorted(self.named),
        }


@dataclass
class ReplayReport:
    """The result of a replay; ``to_json`` gives exactly the CONTRACT §3 document."""

    events: int = 0
    rejected: int = 0
    accounts: dict[str, AccountOutcome] = field(default_factory=dict)
    clusters: dict[str, ClusterOutcome] = field(default_factory=dict)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    seconds: float = 0.0
    #: (event time, members named) of every cluster alert, as raised: how much of a
    #: campaign its clusters covered by when (not part of the CONTRACT document)
    cluster_alerts: list[tuple[float, list[str]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "rejected": self.rejected,
            "accounts": {a: o.to_json() for a, o in self.accounts.items()},
            "clusters": [c.to_json() for c in self.clusters.values()],
        }

    def alerted(self) -> set[str]:
        return {a for a, o in self.accounts.items() if o.first_alert_ts is not None}


def decoder_for(settings: Settings) -> EventDecoder:
    """The worker's decoder: the same limits, so replay refuses what the worker refuses."""
    return EventDecoder(Limits.from_settings(settings.validation))


class _Tracker:
    """Per-account counts and first alerts, updated as alerts come back from the pipeline."""

    def __init__(self, report: ReplayReport) -> None:
        self.report = report
        self.cluster_alert_ts: dict[str, float] = {}
        self.named: dict[str, list[str]] = {}

    def alerts(self, alerts: Iterable[Alert], ts: float, current: str | None) -> None:
        accounts = self.report.accounts
        for alert in alerts:
            if alert.subject_type == "account":
                named = [alert.subject_id]
            else:
                named = list(alert.members)
                self.cluster_alert_ts.setdefault(alert.subject_id, ts)
                self.named[alert.subject_id] = named
                self.report.cluster_alerts.append((ts, named))
                outcome = self.report.clusters.get(alert.subject_id)
                if outcome is not None:
                    outcome.named = named
            for acct in named:
                out = accounts.get(acct)
                if out is None:
                    out = accounts[acct] = AccountOutcome(first_event_ts=ts, last_event_ts=ts)
                if out.first_alert_ts is None:
                    out.first_alert_ts = ts
                    out.events_before_first_alert = out.events - (1 if acct == current else 0)

    def clusters(self, clusters: Iterable[Cluster]) -> None:
        for c in clusters:
            self.report.clusters[c.cluster_id] = ClusterOutcome(
                cluster_id=c.cluster_id,
                members=list(c.members),
                risk=float(c.risk),
                first_alert_ts=c.first_alert_ts,
                named=self.named.get(c.cluster_id, []),
            )


def replay(
    lines: Iterable[bytes],
    pipeline: Pipeline,
    decoder: EventDecoder,
    *,
    on_event: Callable[[RequestEvent], None] | None = None,
    progress: Callable[[int], None] | None = None,
    drain_every: int = DRAIN_EVERY,
    dedup_window: int = 1_200_000,
) -> ReplayReport:
    """Feed every valid line to ``pipeline`` in order; return the replay report.

    ``progress`` receives the number of bytes consumed since its previous call.
    ``on_event`` sees each valid event too (evaluation builds its baselines from it).
    """
    t0 = time.perf_counter()
    report = ReplayReport()
    tracker = _Tracker(report)
    accounts = report.accounts
    decode, process, judge = decoder.decode, pipeline.process, pipeline.clock.judge
    seen = DedupWindow(dedup_window)
    duplicates = 0
    pending_bytes = 0
    ts = 0.0
    for n, line in enumerate(lines, 1):
        pending_bytes += len(line)
        if progress is not None and n % 8192 == 0:
            progress(pending_bytes)
            pending_bytes = 0
        if not line.strip():
            continue
        try:
            event = decode(line.rstrip(b"\r\n"))
        except InvalidEvent as exc:
            report.rejected += 1
            report.rejected_reasons[exc.reason[:120]] += 1
            continue
        late = judge(event.ts)
        if late is not None:
            report.rejected += 1
            report.rejected_reasons[late.split(" (")[0][:120]] += 1
            continue
        if not seen.add(dedup_key(event)):
            duplicates += 1
            continue
        report.events += 1
        ts = event.ts
        acct = event.account_id
        out = accounts.get(acct)
        if out is None:
            out = accounts[acct] = AccountOutcome(first_event_ts=ts)
        out.events += 1
        out.last_event_ts = ts
        if on_event is not None:
            on_event(event)
        if process(event) or report.events % drain_every == 0:
            # drained right after the event that raised it: first alerts are timed exactly
            drained = pipeline.drain()
            tracker.alerts(drained.alerts, ts, acct)
            tracker.clusters(drained.clusters)
    drained = pipeline.drain()
    tracker.alerts(drained.alerts, ts, None)
    tracker.clusters(drained.clusters)
    report.duplicates = duplicates
    if progress is not None:
        progress(pending_bytes)
    _finish(report, pipeline, tracker)
    report.seconds = time.perf_counter() - t0
    return report


def _finish(report: ReplayReport, pipeline: Pipeline, tracker: _Tracker) -> None:
    member_of: dict[str, str] = {}
    for c in report.clusters.values():
        alert_ts = tracker.cluster_alert_ts.get(c.cluster_id)
        if alert_ts is not None:
            c.first_alert_ts = alert_ts
        for m in c.members:
            member_of[m] = c.cluster_id
    for acct, out in report.accounts.items():
        risk = pipeline.risk(acct)
        out.risk = min(1.0, max(0.0, float(risk.risk)))
        out.level = level_for(out.risk)
        out.cluster_id = risk.cluster_id or member_of.get(acct)


def replay_file(
    path: Path, pipeline: Pipeline, decoder: EventDecoder, **kwargs: Any
) -> ReplayReport:
    """:func:`replay` over a JSON Lines file, read in large buffered chunks."""
    with path.open("rb", buffering=1 << 20) as fh:
        return replay(fh, pipeline, decoder, **kwargs)
