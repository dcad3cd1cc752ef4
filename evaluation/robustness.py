"""The robustness matrix: per adversary variant and per honest group, who was alerted.

Headline figures average over whatever attackers a scenario holds; an adaptive
adversary is the one variant they hide. This matrix is one row per attacker archetype
(``variant``, with its family from configs/protocol.yaml) -- accounts, recall, minutes
to the first alert -- and one row per honest coordinated group (sim/honest_groups.py)
-- accounts alerted. Pure functions of per-account outcomes, so a held-out protocol can
pool several runs (:func:`pool`) before computing them.

An account counts as alerted when any alert named it, its own or a cluster's
(``ReplayReport.alerted``, from ``first_alert_ts``). Minutes run from the account's
``harvest_start`` when its label has one (accounts that posed as users first: a
warm-up is not detection delay) and from its first event otherwise; an alert raised
during a warm-up gives a negative delay, reported as such.

Cluster coverage is the swarm's bar (issue 11: 90% of its accounts in alerted clusters
whose members are 95% distillers, within 24 simulated hours): an account is covered
from the first cluster alert that named it while at least ``PURE_SHARE`` of the
members that alert named were distillers. The 24 hours are read both from the
account's own start (as minutes to alert are) and from its campaign's first event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distillguard.evaluation import metrics

#: share of distillers among the members a cluster alert named for it to cover them
PURE_SHARE = 0.95
#: the swarm bar's horizon, in simulated hours
COVERAGE_HOURS = 24.0


@dataclass(frozen=True)
class Outcome:
    """One labelled account's ground truth and what a method did about it."""

    archetype: str
    label: int  # 1 distiller, 0 benign
    alerted: bool
    delay_minutes: float | None = None  # None unless alerted
    #: hours from the account's own start / its campaign's first event to the first
    #: cluster alert of ``PURE_SHARE`` distillers that named it (None: never)
    cluster_hours: float | None = None
    campaign_cluster_hours: float | None = None


def pure_cluster_times(
    cluster_alerts: Iterable[tuple[float, Sequence[str]]], labels: Mapping[str, int]
) -> dict[str, float]:
    """First time each account was named by a cluster alert of ``PURE_SHARE`` distillers.

    >>> pure_cluster_times([(5.0, ["a", "b", "x"]), (9.0, ["a", "b", "c"])],
    ...                    {"a": 1, "b": 1, "c": 1, "x": 0})
    {'a': 9.0, 'b': 9.0, 'c': 9.0}
    """
    out: dict[str, float] = {}
    for ts, named in cluster_alerts:
        if named and sum(labels.get(a, 0) == 1 for a in named) >= PURE_SHARE * len(named):
            for a in named:
                if ts < out.get(a, math.inf):
                    out[a] = ts
    return out


def outcomes(
    truth: Mapping[str, Any],
    alerted: Iterable[str],
    first_alert_ts: Mapping[str, float],
    first_event_ts: Mapping[str, float],
    cluster_alerts: Iterable[tuple[float, Sequence[str]]] = (),
) -> dict[str, Outcome]:
    """Per-account outcomes of one method on one run.

    ``truth`` maps account ids to objects with ``label``, ``archetype`` and optionally
    ``harvest_start`` and ``campaign`` (``evaluate.Truth``); ``cluster_alerts`` are
    the method's (time, members named) of each cluster alert, for cluster coverage.

    >>> from types import SimpleNamespace as T
    >>> truth = {"a": T(label=1, archetype="swarm", harvest_start=None),
    ...          "b": T(label=1, archetype="stealth_fleet", harvest_start=600.0),
    ...          "c": T(label=0, archetype="hackathon", harvest_start=None)}
    >>> out = outcomes(truth, {"a", "b"}, {"a": 120.0, "b": 900.0}, {"a": 0.0, "b": 0.0, "c": 5.0})
    >>> out["a"].delay_minutes, out["b"].delay_minutes, out["c"].alerted
    (2.0, 5.0, False)
    """
    flagged = set(alerted)
    covered = pure_cluster_times(cluster_alerts, {a: int(t.label) for a, t in truth.items()})
    campaign_start: dict[str, float] = {}
    for acct, t in truth.items():
        campaign = getattr(t, "campaign", None)
        if campaign is not None and acct in first_event_ts:
            ts = first_event_ts[acct]
            campaign_start[campaign] = min(campaign_start.get(campaign, ts), ts)
    out = {}
    for acct, t in truth.items():
        hit = acct in flagged
        start = getattr(t, "harvest_start", None)
        if start is None:
            start = first_event_ts.get(acct)
        delay = cluster_h = campaign_h = None
        if hit and acct in first_alert_ts and start is not None:
            delay = (first_alert_ts[acct] - start) / 60.0
        if acct in covered:
            if start is not None:
                cluster_h = (covered[acct] - start) / 3600.0
            origin = campaign_start.get(getattr(t, "campaign", None) or "", start)
            if origin is not None:
                campaign_h = (covered[acct] - origin) / 3600.0
        out[acct] = Outcome(str(t.archetype), int(t.label), hit, delay, cluster_h, campaign_h)
    return out


def pool(runs: Mapping[str, Mapping[str, Outcome]]) -> dict[str, Outcome]:
    """Several runs' outcomes as one population (accounts keyed ``run/account``)."""
    return {f"{run}/{acct}": o for run, per in runs.items() for acct, o in per.items()}


def matrix(
    results: Mapping[str, Outcome],
    families: Mapping[str, str],
    honest_groups: Iterable[str],
) -> dict[str, Any]:
    """Rows per attacker variant, per honest group, and the ordinary background.

    >>> res = {"a": Outcome("swarm", 1, True, 30.0), "b": Outcome("swarm", 1, False),
    ...        "c": Outcome("hackathon", 0, True), "d": Outcome("hobbyist", 0, False)}
    >>> m = matrix(res, {"swarm": "swarm"}, ["hackathon", "household"])
    >>> m["variants"]["swarm"]["recall"], m["variants"]["swarm"]["median_minutes"]
    (0.5, 30.0)
    >>> m["honest_groups"]["hackathon"], m["background"]["alerted"]
    ({'accounts': 1, 'alerted': 1, 'share': 1.0}, 0)
    """
    honest = set(honest_groups)
    variants: dict[str, list[Outcome]] = {}
    groups: dict[str, list[Outcome]] = {}
    background: list[Outcome] = []
    for o in results.values():
        if o.label == 1:
            variants.setdefault(o.archetype, []).append(o)
        elif o.archetype in honest:
            groups.setdefault(o.archetype, []).append(o)
        else:
            background.append(o)
    rows = {}
    for name, members in sorted(variants.items()):
        delays = [o.delay_minutes for o in members if o.alerted and o.delay_minutes is not None]
        caught = sum(o.alerted for o in members)
        own = [o.cluster_hours for o in members if o.cluster_hours is not None]
        campaign = [
            o.campaign_cluster_hours for o in members if o.campaign_cluster_hours is not None
        ]
        rows[name] = {
            "family": families.get(name),
            "accounts": len(members),
            "alerted": caught,
            "recall": caught / len(members),
            "median_minutes": metrics.summary(delays)["median"],
            "alerted_before_harvest": sum(1 for d in delays if d < 0),
            "in_pure_clusters": len(own),
            "in_pure_clusters_24h": sum(1 for h in own if h <= COVERAGE_HOURS),
            "in_pure_clusters_24h_of_campaign": sum(1 for h in campaign if h <= COVERAGE_HOURS),
        }
    benign_alerted = sum(o.alerted for o in background) + sum(
        o.alerted for g in groups.values() for o in g
    )
    benign_total = len(background) + sum(len(g) for g in groups.values())
    return {
        "variants": rows,
        "honest_groups": {
            name: _share(groups.get(name, [])) for name in sorted(honest) if name in groups
        },
        "background": _share(background),
        "benign_fpr": benign_alerted / benign_total if benign_total else math.nan,
    }


def by_family(m: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Variant rows summed per family (a leave-one-family-out fold reports these).

    >>> fam = by_family({"variants": {"x": {"family": "f", "accounts": 2, "alerted": 1},
    ...                               "y": {"family": "f", "accounts": 2, "alerted": 0}}})
    >>> fam["f"]["recall"], fam["f"]["variants"]
    (0.25, ['x', 'y'])
    """
    out: dict[str, dict[str, Any]] = {}
    for name, row in m["variants"].items():
        fam = out.setdefault(
            row.get("family") or "unassigned", {"accounts": 0, "alerted": 0, "variants": []}
        )
        fam["accounts"] += row["accounts"]
        fam["alerted"] += row["alerted"]
        fam["variants"].append(name)
    for fam in out.values():
        fam["recall"] = fam["alerted"] / fam["accounts"] if fam["accounts"] else math.nan
    return dict(sorted(out.items()))


def _share(members: list[Outcome]) -> dict[str, Any]:
    alerted = sum(o.alerted for o in members)
    return {
        "accounts": len(members),
        "alerted": alerted,
        "share": alerted / len(members) if members else math.nan,
    }
