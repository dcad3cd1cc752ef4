"""``evaluate``: replay the detectors and the baselines over one labelled file, compare.

Everything here is orchestration; the numbers come from :mod:`metrics` (pure) and the
methods from :mod:`replay` and :mod:`baselines`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from distillguard.detectors.pipeline import build_pipeline
from distillguard.evaluation import metrics, robustness
from distillguard.evaluation.baselines import (
    EventColumns,
    MethodResult,
    isolation_forest,
    rate_limit,
)
from distillguard.evaluation.replay import ReplayReport, decoder_for, replay_file
from distillguard.settings import Settings

DEFAULT_ALERT_THRESHOLD = 0.7
MAX_FPR = 0.001
#: Attackers that act alone: the account detectors alone must catch these (issue 4).
SINGLE_ACCOUNT_ARCHETYPES = frozenset({"bulk_distiller", "logprob_harvester", "release_pivot"})
#: Campaigns whose members are meant to be invisible alone: the cluster stage's job.
COORDINATED_ARCHETYPES = frozenset({"hydra", "low_and_slow"})


@dataclass(frozen=True)
class Truth:
    """Ground truth for one account (CONTRACT §2)."""

    label: int
    campaign: str | None
    archetype: str
    #: when an account that first posed as an ordinary user began harvesting
    harvest_start: float | None = None


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def load_labels(path: Path) -> dict[str, Truth]:
    truth: dict[str, Truth] = {}
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                label = {"distiller": 1, "benign": 0}[rec["label"]]
                truth[str(rec["account_id"])] = Truth(
                    label,
                    rec.get("campaign"),
                    str(rec.get("archetype") or "unknown"),
                    _epoch(rec.get("harvest_start")),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: not a label record ({exc!r})") from None
    return truth


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    methods: list[MethodResult]
    report: ReplayReport
    truth: dict[str, Truth]
    first_event_ts: dict[str, float] = field(default_factory=dict)


def detector_setting(settings: Settings, name: str, default: Any) -> Any:
    """A ``detectors.*`` setting whether that section is a typed model or a plain mapping."""
    section = settings.detectors
    if isinstance(section, dict):
        return section.get(name, default)
    return getattr(section, name, default)


def detector_result(report: ReplayReport, threshold: float) -> MethodResult:
    """The shipped pipeline as a method: scored by final risk, alerted if it had an alert."""
    result = MethodResult(
        "distillguard (pipeline)",
        scores={},
        alerted=report.alerted(),
        params={"alert_threshold": threshold},
        cluster_alerts=report.cluster_alerts,
    )
    for acct, out in report.accounts.items():
        result.scores[acct] = out.risk
        if out.first_alert_ts is not None:
            result.first_alert_ts[acct] = out.first_alert_ts
            result.events_before[acct] = int(out.events_before_first_alert or 0)
    return result


def segments(truth: dict[str, Truth], events: dict[str, int]) -> dict[str, list[str]]:
    """Distillers grouped by what should catch them.

    ``single_account``: lone attackers, plus members of coordinated campaigns that are
    not diluted, i.e. send more events than the benign median account; ``coordinated``:
    hydra and low-and-slow members (including the undiluted ones).
    """
    benign_counts = sorted(events.get(a, 0) for a, t in truth.items() if t.label == 0)
    median = benign_counts[len(benign_counts) // 2] if benign_counts else 0
    single, coordinated = [], []
    for a, t in truth.items():
        if t.label != 1:
            continue
        if t.archetype in COORDINATED_ARCHETYPES:
            coordinated.append(a)
            if events.get(a, 0) > median:
                single.append(a)
        elif t.archetype in SINGLE_ACCOUNT_ARCHETYPES or t.campaign is None:
            single.append(a)
    return {"single_account": single, "coordinated": coordinated}


def segment_metrics(method: MethodResult, accounts: list[str], threshold: float) -> dict[str, Any]:
    """Recall of one group of distillers at the all-accounts FPR threshold, and delays."""
    caught = [a for a in accounts if a in method.first_alert_ts]
    return {
        "accounts": len(accounts),
        "recall_at_fpr_0.1pct": (
            sum(method.scores.get(a, 0.0) > threshold for a in accounts) / len(accounts)
        )
        if accounts
        else None,
        "alerted_recall": len([a for a in accounts if a in method.alerted]) / len(accounts)
        if accounts
        else None,
        "delay_events": metrics.summary([method.events_before[a] for a in caught]),
    }


def campaign_delays(
    method: MethodResult, truth: dict[str, Truth], first_ts: dict[str, float]
) -> dict[str, float | None]:
    """Simulated minutes from a campaign's first event to its first alerted member."""
    start: dict[str, float] = {}
    detected: dict[str, float] = {}
    for a, t in truth.items():
        if t.label != 1 or t.campaign is None or a not in first_ts:
            continue
        start[t.campaign] = min(start.get(t.campaign, math.inf), first_ts[a])
        if a in method.first_alert_ts:
            detected[t.campaign] = min(detected.get(t.campaign, math.inf), method.first_alert_ts[a])
    return {
        c: ((detected[c] - s) / 60.0 if c in detected else None) for c, s in sorted(start.items())
    }


def default_families() -> dict[str, str]:
    """Variant -> family from the shipped protocol (empty if it cannot be read)."""
    from distillguard.evaluation.protocol import load_protocol

    try:
        return load_protocol().family_of()
    except (FileNotFoundError, ValueError):
        return {}


def honest_group_names() -> frozenset[str]:
    """Benign archetypes that coordinate honestly (reported one by one in the matrix)."""
    from distillguard.sim.honest_groups import HONEST_GROUPS

    return frozenset(HONEST_GROUPS)


def robustness_of(
    method: MethodResult,
    truth: dict[str, Truth],
    first_ts: dict[str, float],
) -> dict[str, robustness.Outcome]:
    """Per-account outcomes of ``method``, the input of the robustness matrix."""
    return robustness.outcomes(
        truth, method.alerted, method.first_alert_ts, first_ts, method.cluster_alerts
    )


def method_metrics(
    method: MethodResult,
    truth: dict[str, Truth],
    first_ts: dict[str, float],
    groups: dict[str, list[str]] | None = None,
    families: dict[str, str] | None = None,
) -> dict[str, Any]:
    accounts = list(truth)
    y = [truth[a].label for a in accounts]
    s = [method.scores.get(a, 0.0) for a in accounts]
    flagged = [a in method.alerted for a in accounts]
    recall_fpr, thr = metrics.recall_at_fpr(y, s, MAX_FPR)
    distillers = [a for a in accounts if truth[a].label == 1]
    caught = [a for a in distillers if a in method.first_alert_ts]
    delays_events = [method.events_before[a] for a in caught]
    delays_min = [(method.first_alert_ts[a] - first_ts[a]) / 60.0 for a in caught if a in first_ts]
    campaigns = {a: truth[a].campaign or truth[a].archetype for a in distillers}
    benign_arch = {a: truth[a].archetype for a in accounts if truth[a].label == 0}
    out: dict[str, Any] = {
        "name": method.name,
        "params": method.params,
        "pr_auc": metrics.pr_auc(y, s),
        "roc_auc": metrics.roc_auc(y, s),
        "recall_at_fpr_0.1pct": recall_fpr,
        "threshold_at_fpr_0.1pct": thr,
        "alerted": metrics.precision_recall(y, flagged),
        "campaign_coverage": metrics.coverage(campaigns, method.alerted),
        "false_alerts_by_archetype": metrics.coverage(benign_arch, method.alerted),
        "delay_events": metrics.summary(delays_events),
        "delay_minutes": metrics.summary(delays_min),
        "notes": method.notes,
        "segments": {
            name: segment_metrics(method, members, thr) for name, members in (groups or {}).items()
        },
        "campaign_delay_minutes": campaign_delays(method, truth, first_ts),
        "robustness": robustness.matrix(
            robustness_of(method, truth, first_ts),
            families if families is not None else {},
            honest_group_names(),
        ),
    }
    if "alert_threshold" in method.params:
        at = [method.scores.get(a, 0.0) >= method.params["alert_threshold"] for a in accounts]
        out["at_threshold"] = metrics.precision_recall(y, at)
    return out


def evaluate(
    events: Path,
    labels: Path,
    settings: Settings,
    *,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
    families: dict[str, str] | None = None,
) -> Evaluation:
    """Replay ``events`` through the configured pipeline and the baselines; compute metrics."""
    truth = load_labels(labels)
    families = default_families() if families is None else families
    threshold = float(detector_setting(settings, "alert_threshold", DEFAULT_ALERT_THRESHOLD))
    cols = EventColumns()
    t0 = time.perf_counter()
    report = replay_file(
        events,
        build_pipeline(settings),
        decoder_for(settings),
        on_event=cols.add,
        progress=progress,
    )
    t_replay = time.perf_counter() - t0
    first_ts = {a: o.first_event_ts for a, o in report.accounts.items()}
    benign = {a for a, t in truth.items() if t.label == 0}
    t1 = time.perf_counter()
    methods = [
        detector_result(report, threshold),
        rate_limit(cols, benign),
        isolation_forest(cols, seed),
    ]
    t_baselines = time.perf_counter() - t1
    unlabelled = sorted(set(report.accounts) - set(truth))
    groups = segments(truth, {a: o.events for a, o in report.accounts.items()})
    result: dict[str, Any] = {
        "events": report.events,
        "rejected": report.rejected,
        "rejected_reasons": dict(report.rejected_reasons.most_common(10)),
        "accounts": len(truth),
        "benign_accounts": len(benign),
        "distiller_accounts": len(truth) - len(benign),
        "accounts_without_label": len(unlabelled),
        "pipeline": str(detector_setting(settings, "pipeline", "counting")),
        "alert_threshold": threshold,
        "max_fpr": MAX_FPR,
        "seconds": {"replay": round(t_replay, 2), "baselines": round(t_baselines, 2)},
        "replay_events_per_s": round(report.events / t_replay) if t_replay > 0 else None,
        "methods": [method_metrics(m, truth, first_ts, groups, families) for m in methods],
    }
    if report.clusters:
        # What an alerted cluster implicates: the members its alert named. When alerts
        # name members, a cluster whose risk passed the threshold without an alert
        # (fewer than min_alert_size named) implicates no one.
        naming = any(c.named for c in report.clusters.values())
        alerted = [
            c.named or c.members
            for c in report.clusters.values()
            if c.first_alert_ts is not None or (c.risk >= threshold and not naming)
        ]
        labels01 = {a: t.label for a, t in truth.items()}
        hydra = [a for a, t in truth.items() if t.archetype == "hydra"]
        result["clusters"] = metrics.cluster_metrics(alerted, labels01, hydra)
        result["clusters"]["all_clusters"] = len(report.clusters)
    return Evaluation(result, methods, report, truth, first_ts)


def clean(obj: Any) -> Any:
    """NaN/inf to None so metrics.json is strict JSON."""
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj
