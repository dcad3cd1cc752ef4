"""``report.md``: the evaluation as markdown tables, straight from ``metrics.json``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from distillguard.evaluation.robustness import COVERAGE_HOURS, PURE_SHARE


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "—"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}f}"


def _share(c: dict[str, Any]) -> str:
    return f"{c['flagged']}/{c['total']}"


def _by_method(
    title: str,
    row_name: str,
    methods: list[dict[str, Any]],
    key: str,
    cell: Callable[[Any], str],
) -> list[str]:
    """A section whose table has one row per key of ``methods[i][key]``, a column per method."""
    lines = [
        "",
        f"## {title}",
        "",
        f"| {row_name} | " + " | ".join(x["name"] for x in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for row in methods[0][key]:
        cells = [cell(x[key].get(row)) for x in methods]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def render(m: dict[str, Any], *, title: str = "Evaluation") -> str:
    methods = m["methods"]
    lines = [
        f"# {title}",
        "",
        f"{m['events']:,} events ({m['rejected']:,} rejected), {m['accounts']:,} labelled accounts "
        f"({m['benign_accounts']:,} benign, {m['distiller_accounts']:,} distillers). "
        f"Pipeline `{m['pipeline']}`, alert threshold {m['alert_threshold']}. "
        f"Replay {m['seconds']['replay']} s ({m['replay_events_per_s'] or 0:,} events/s), "
        f"baselines {m['seconds']['baselines']} s.",
        "",
        "| method | PR-AUC | ROC-AUC | recall @ benign FPR ≤ 0.1% | alerted: precision | "
        "alerted: recall | benign accounts alerted | median events before alert | "
        "median minutes to alert |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in methods:
        a = x["alerted"]
        lines.append(
            f"| {x['name']} | {_f(x['pr_auc'])} | {_f(x['roc_auc'])} | "
            f"{_f(x['recall_at_fpr_0.1pct'])} | {_f(a['precision'])} | {_f(a['recall'])} | "
            f"{a['fp']} | {_f(x['delay_events']['median'], 0)} | "
            f"{_f(x['delay_minutes']['median'], 1)} |"
        )
    seg_names = list(methods[0].get("segments", {}))
    if seg_names:
        lines += [
            "",
            "## Recall by kind of attacker",
            "",
            "Single-account: lone attackers (bulk, logprob harvester, release pivot) and "
            "campaign members sending more than the benign median; coordinated: hydra and "
            "low-and-slow members. Recall at the all-accounts benign FPR ≤ 0.1% threshold "
            "/ recall of alerts / median events before the first alert.",
            "",
            "| method | " + " | ".join(seg_names) + " |",
            "|---|" + "---|" * len(seg_names),
        ]
        for x in methods:
            cells = []
            for seg in seg_names:
                g = x["segments"][seg]
                cells.append(
                    f"{_f(g['recall_at_fpr_0.1pct'])} / {_f(g['alerted_recall'])} / "
                    f"{_f(g['delay_events']['median'], 0)} (n={g['accounts']})"
                )
            lines.append(f"| {x['name']} | " + " | ".join(cells) + " |")
    lines += _by_method(
        "Coverage by campaign (accounts alerted / accounts)",
        "campaign",
        methods,
        "campaign_coverage",
        _share,
    )
    if "campaign_delay_minutes" in methods[0]:
        lines += _by_method(
            "Minutes from a campaign's first event to its first alert",
            "campaign",
            methods,
            "campaign_delay_minutes",
            lambda v: _f(v, 1),
        )
    lines += _by_method(
        "False alerts by benign archetype (accounts alerted / accounts)",
        "archetype",
        methods,
        "false_alerts_by_archetype",
        _share,
    )
    lines += robustness_section(methods)
    if "clusters" in m:
        c = m["clusters"]
        lines += [
            "",
            "## Clusters",
            "",
            f"{c['all_clusters']} clusters, {c['clusters']} alerted; hydra accounts covered "
            f"by alerted clusters: {_f(c['hydra_coverage'])}; member precision "
            f"{_f(c['member_precision'])}; most benign accounts in one alerted cluster: "
            f"{c['largest_benign']}.",
        ]
    else:
        lines += ["", "## Clusters", "", "The pipeline reported no clusters."]
    lines += ["", "## Notes", ""]
    for x in methods:
        for note in x["notes"]:
            lines.append(f"- {x['name']}: {note}")
    for x in methods:
        if "at_threshold" in x:
            t = x["at_threshold"]
            lines.append(
                f"- {x['name']}: accounts whose final risk ≥ {m['alert_threshold']}: "
                f"precision {_f(t['precision'])}, recall {_f(t['recall'])} "
                f"({t['fp']} benign)."
            )
    lines += [
        "- Recall at FPR ≤ 0.1% flags scores strictly above the (k+1)-th highest benign "
        "score, k = floor(0.001 × benign accounts); ties are not flagged.",
        "- Delays count only caught distillers; plots: `pr_curves.png`, `delay_cdf.png`.",
        "",
    ]
    return "\n".join(lines)


def robustness_section(methods: list[dict[str, Any]], *, level: str = "##") -> list[str]:
    """The robustness matrix: per attacker variant, per honest group, the background.

    The first method (the pipeline) gets its alerted count, recall and median minutes to
    the first alert; every other method its recall (variants) or alerted count (groups).
    """
    if not methods or "robustness" not in methods[0]:
        return []
    main, others = methods[0], methods[1:]
    rob = main["robustness"]
    lines = [
        "",
        f"{level} Robustness matrix",
        "",
        "Per attacker variant: accounts, accounts alerted (directly or through a cluster "
        "alert), recall, median minutes from the account's first harvesting request to its "
        "first alert (its first event unless it warmed up first). Baselines: recall.",
        "",
        "| variant | family | accounts | alerted | recall | median minutes to alert | "
        + " | ".join(f"{x['name']}: recall" for x in others)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(others),
    ]
    for name, row in rob["variants"].items():
        extra = [_f(x["robustness"]["variants"].get(name, {}).get("recall")) for x in others]
        lines.append(
            f"| {name} | {row['family'] or '—'} | {row['accounts']:,} | {row['alerted']:,} | "
            f"{_f(row['recall'])} | {_f(row['median_minutes'], 1)} | " + " | ".join(extra) + " |"
        )
    lines += _coverage_table(rob["variants"])
    lines += [
        "",
        "Honest coordinated groups and the ordinary background: accounts alerted / accounts.",
        "",
        f"| benign | {main['name']} | " + " | ".join(x["name"] for x in others) + " |",
        "|---|---|" + "---|" * len(others),
    ]
    rows = [*rob["honest_groups"], "background"]
    for name in rows:

        def cell(x: dict[str, Any], name: str = name) -> str:
            r = x["robustness"]
            g = r["background"] if name == "background" else r["honest_groups"].get(name)
            return f"{g['alerted']}/{g['accounts']}" if g else "—"

        label = "ordinary background (all other benign)" if name == "background" else name
        lines.append(f"| {label} | " + " | ".join(cell(x) for x in [main, *others]) + " |")
    return lines


def _coverage_table(variants: dict[str, Any]) -> list[str]:
    """Cluster coverage per variant: the swarm bar's measure (``robustness.py``)."""
    rows = {n: r for n, r in variants.items() if "in_pure_clusters" in r}
    if not rows:
        return []
    lines = [
        "",
        "Cluster coverage (the pipeline): accounts named by a cluster alert while at least "
        f"{PURE_SHARE:.0%} of the members it named were distillers, by the end of the run "
        f"and within {COVERAGE_HOURS:g} simulated hours of the account's own start (its "
        "first harvesting request, or first event) and of its campaign's first event.",
        "",
        f"| variant | accounts | in such clusters | within {COVERAGE_HOURS:g} h of own start | "
        f"within {COVERAGE_HOURS:g} h of campaign start |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        n = row["accounts"]

        def share(k: int, n: int = n) -> str:
            return f"{k:,} ({k / n:.1%})" if n else "—"

        lines.append(
            f"| {name} | {n:,} | {share(row['in_pure_clusters'])} | "
            f"{share(row['in_pure_clusters_24h'])} | "
            f"{share(row['in_pure_clusters_24h_of_campaign'])} |"
        )
    return lines
