"""The label drill: how fast analysts' confirmations reach the rest of a missed campaign.

Issue 11 asks that once an analyst confirms 5 accounts of a campaign the detectors
missed, the rest of it is alerted within one simulated hour, with no new benign
alerts. The drill measures exactly that on a labelled simulation: it replays the
events through the pipeline in event time (the replay's decoder, clock and
de-duplication), and at event time T (``at_hours`` after the first event) picks
``confirm`` accounts of one variant that are active and not alerted yet, and feeds
them as confirmed labels with no feature snapshot, as a review of accounts that were
never alerted writes them (the pipeline takes their features from its own state).
Optionally it also feeds ``dismiss`` benign accounts as dismissed labels: analysts
dismiss far more than they confirm, and the model must not learn "everything is
benign" from that.

Reported: of the variant's other accounts active before T, the share alerted before
T and by each ``windows_h`` after it (cumulative, directly or through a cluster
alert), and the benign accounts first alerted after T (in the same window), with
the honest coordinated groups named.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillguard.detectors.pipeline import Pipeline, build_pipeline
from distillguard.evaluation.evaluate import Truth, load_labels
from distillguard.evaluation.replay import decoder_for
from distillguard.events import InvalidEvent
from distillguard.records import Alert, Label
from distillguard.settings import Settings
from distillguard.stream.dedup import DedupWindow, dedup_key

#: honest archetypes that act together (docs/adversaries.md): named in the result
HONEST_GROUPS = ("company_card", "eval_vendor", "university_course", "hackathon", "household")
DRAIN_EVERY = 2_000


@dataclass
class DrillResult:
    """What one drill measured; ``to_json`` is what the command prints and writes."""

    variant: str
    at_ts: float
    confirmed: list[str]
    dismissed: list[str]
    #: the variant's other accounts active before T
    rest: list[str]
    rest_alerted_before: int
    #: hours after T -> accounts of ``rest`` alerted by then (before T included)
    rest_alerted_by: dict[float, int]
    #: benign accounts first alerted after T and by the last window, with archetypes
    benign_new: dict[str, str] = field(default_factory=dict)
    benign_alerted_before: int = 0
    benign_accounts: int = 0
    #: the variant's accounts first seen after T (not in ``rest``)
    late_starters: int = 0
    events: int = 0

    def share_by(self, hours: float) -> float:
        return self.rest_alerted_by[hours] / len(self.rest) if self.rest else 0.0

    def to_json(self) -> dict[str, Any]:
        honest = {g: sum(1 for a in self.benign_new.values() if a == g) for g in HONEST_GROUPS}
        return {
            "variant": self.variant,
            "confirmed": self.confirmed,
            "dismissed": len(self.dismissed),
            "rest": len(self.rest),
            "rest_alerted_before": self.rest_alerted_before,
            "rest_share_alerted_by_hours": {
                f"{h:g}": round(self.share_by(h), 4) for h in sorted(self.rest_alerted_by)
            },
            "benign_newly_alerted": len(self.benign_new),
            "benign_newly_alerted_share": round(len(self.benign_new) / self.benign_accounts, 6)
            if self.benign_accounts
            else 0.0,
            "benign_newly_alerted_by_archetype": _count(self.benign_new.values()),
            "honest_groups_newly_alerted": honest,
            "benign_alerted_before": self.benign_alerted_before,
            "late_starters": self.late_starters,
            "events": self.events,
        }


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _named(alerts: Iterable[Alert]) -> Iterable[str]:
    for alert in alerts:
        if alert.subject_type == "account":
            yield alert.subject_id
        else:
            yield from alert.members


def label_drill(
    lines: Iterable[bytes],
    truth: dict[str, Truth],
    settings: Settings,
    variant: str,
    *,
    confirm: int = 5,
    at_hours: float = 48.0,
    windows_h: Sequence[float] = (1.0, 6.0),
    dismiss: int = 0,
    seed: int = 0,
    pipeline: Pipeline | None = None,
) -> DrillResult:
    """Replay ``lines`` and feed the labels at T; stops at T + the last window.

    Raises ValueError when the variant has fewer than ``confirm`` active, unalerted
    accounts at T (nothing to drill) or never reaches T.
    """
    pipe = pipeline if pipeline is not None else build_pipeline(settings)
    decoder = decoder_for(settings)
    seen = DedupWindow(1_200_000)
    judge = pipe.clock.judge
    first_alert: dict[str, float] = {}
    active: set[str] = set()
    t0: float | None = None
    at_ts = end_ts = 0.0
    labelled = False
    result: DrillResult | None = None
    events = 0

    def note(alerts: Iterable[Alert], ts: float) -> None:
        for a in _named(alerts):
            first_alert.setdefault(a, ts)

    ts = 0.0
    for line in lines:
        if not line.strip():
            continue
        try:
            event = decoder.decode(line.rstrip(b"\r\n"))
        except InvalidEvent:
            continue
        if judge(event.ts) is not None or not seen.add(dedup_key(event)):
            continue
        ts = event.ts
        if t0 is None:
            t0 = ts
            at_ts = t0 + at_hours * 3600.0
            end_ts = at_ts + max(windows_h) * 3600.0
        if ts > end_ts:
            break
        if not labelled and ts >= at_ts:
            note(pipe.drain().alerts, ts)
            result = _teach(pipe, truth, variant, active, first_alert, confirm, dismiss, seed)
            result.at_ts = ts
            labelled = True
        if not labelled:
            active.add(event.account_id)
        events += 1
        if pipe.process(event) or events % DRAIN_EVERY == 0:
            note(pipe.drain().alerts, ts)
    note(pipe.drain().alerts, ts)
    if result is None:
        raise ValueError(f"the events end before T = {at_hours} h after the first one")
    T = result.at_ts
    result.events = events
    result.rest_alerted_before = sum(1 for a in result.rest if first_alert.get(a, T + 1) < T)
    for h in windows_h:
        by = T + h * 3600.0
        result.rest_alerted_by[h] = sum(1 for a in result.rest if first_alert.get(a, by + 1) <= by)
    benign = [a for a, t in truth.items() if t.label == 0]
    result.benign_accounts = len(benign)
    result.benign_alerted_before = sum(1 for a in benign if first_alert.get(a, T) < T)
    result.benign_new = {
        a: truth[a].archetype
        for a in benign
        if T <= first_alert.get(a, end_ts + 1) <= end_ts and a not in result.dismissed
    }
    members = [a for a, t in truth.items() if t.archetype == variant]
    result.late_starters = sum(1 for a in members if a not in active)
    return result


def _teach(
    pipe: Pipeline,
    truth: dict[str, Truth],
    variant: str,
    active: set[str],
    first_alert: dict[str, float],
    confirm: int,
    dismiss: int,
    seed: int,
) -> DrillResult:
    """Pick and feed the labels (a seeded choice among accounts sorted by id)."""
    rng = random.Random(seed)
    missed = sorted(
        a for a in active if truth.get(a) and truth[a].archetype == variant and a not in first_alert
    )
    if len(missed) < confirm:
        raise ValueError(
            f"{variant}: {len(missed)} active accounts not alerted at T, fewer than {confirm}"
        )
    confirmed = sorted(rng.sample(missed, confirm))
    benign = sorted(a for a in active if truth.get(a) and truth[a].label == 0)
    dismissed = sorted(rng.sample(benign, min(dismiss, len(benign))))
    for a in dismissed:
        pipe.learn_label(Label(account_id=a, label="benign", analyst="drill"))
    for a in confirmed:
        pipe.learn_label(Label(account_id=a, label="distiller", analyst="drill"))
    rest = sorted(
        a
        for a in active
        if truth.get(a) and truth[a].archetype == variant and a not in set(confirmed)
    )
    return DrillResult(
        variant=variant,
        at_ts=0.0,
        confirmed=confirmed,
        dismissed=dismissed,
        rest=rest,
        rest_alerted_before=0,
        rest_alerted_by={},
    )


def label_drill_file(
    events: Path, labels: Path, settings: Settings, variant: str, **kwargs: Any
) -> DrillResult:
    """:func:`label_drill` over a JSON Lines file and its labels file."""
    truth = load_labels(labels)
    with events.open("rb", buffering=1 << 20) as fh:
        return label_drill(fh, truth, settings, variant, **kwargs)
