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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from distillguard.evaluation import metrics


@dataclass(frozen=True)
class Outcome:
    """One labelled account's ground truth and what a method did about it."""

    archetype: str
    label: int  # 1 distiller, 0 benign
    alerted: bool
    delay_minutes: float | None = None  # None unless alerted


def outcomes(
    truth: Mapping[str, Any],
    alerted: Iterable[str],
    first_alert_ts: Mapping[str, float],
    first_event_ts: Mapping[str, float],
) -> dict[str, Outcome]:
    """Per-account outcomes of one method on one run.

    ``truth`` maps account ids to objects with ``label``, ``archetype`` and optionally
    ``harvest_start`` (``evaluate.Truth``).

    >>> from types import SimpleNamespace as T
    >>> truth = {"a": T(label=1, archetype="swarm", harvest_start=None),
    ...          "b": T(label=1, archetype="stealth_fleet", harvest_start=600.0),
    ...          "c": T(label=0, archetype="hackathon", harvest_start=None)}
    >>> out = outcomes(truth, {"a", "b"}, {"a": 120.0, "b": 900.0}, {"a": 0.0, "b": 0.0, "c": 5.0})
    >>> out["a"].delay_minutes, out["b"].delay_minutes, out["c"].alerted
    (2.0, 5.0, False)
    """
    flagged = set(alerted)
    out = {}
    for acct, t in truth.items():
        hit = acct in flagged
        delay = None
        if hit and acct in first_alert_ts:
            start = getattr(t, "harvest_start", None)
            if start is None:
                start = first_event_ts.get(acct)
            if start is not None:
                delay = (first_alert_ts[acct] - start) / 60.0
        out[acct] = Outcome(str(t.archetype), int(t.label), hit, delay)
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
        rows[name] = {
            "family": families.get(name),
            "accounts": len(members),
            "alerted": caught,
            "recall": caught / len(members),
            "median_minutes": metrics.summary(delays)["median"],
            "alerted_before_harvest": sum(1 for d in delays if d < 0),
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
