"""Linkage-stage throughput, and what it finds, on a simulated scenario.

    .venv/bin/python bench/linkage.py --scenario small
    .venv/bin/python bench/linkage.py --events E.jsonl --labels L.jsonl
    .venv/bin/python bench/linkage.py --events E.jsonl --labels L.jsonl --only linkage

Replays the events (prompt text included) in file order, timing only ``process``
(decoding is the edge's cost) in CPU seconds of this process, through up to three
pipelines:

- ``linkage``: the linkage stage alone;
- ``account``: the account pipeline alone (for reference);
- ``linked``: the account pipeline composed with the linkage stage, as the worker and
  ``replay`` run it with ``detectors.pipeline: linked``.

With labels it then reports, for the linkage stage: each hydra campaign's accounts
covered by an alerted cluster at the end, the delay from the campaign's first event
to its first cluster alert (simulated minutes), member precision of alerted clusters,
the largest number of benign accounts in any cluster (alerted or not) and the benign
accounts any alert ever named (a cluster may dissolve before the end). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import orjson
from rich.console import Console
from rich.table import Table
from scenario_data import chunks, read_labels, scenario_files

from distillguard.detectors.linkage import LinkageConfig, LinkageStage, LinkedPipeline
from distillguard.events import RequestEvent
from distillguard.records import Alert, Cluster
from distillguard.settings import get_settings

console = Console()

#: what ``process`` returns: the stage's alerts, or a pipeline's "raised an alert" flag
R = TypeVar("R")


def timed(
    path: Path,
    limit: int | None,
    process: Callable[[RequestEvent], R],
    on_alerts: Callable[[RequestEvent, R], None] | None = None,
) -> tuple[int, float]:
    """Events processed and CPU seconds spent inside ``process``.

    ``on_alerts`` gets what ``process`` returned whenever it is truthy (the linkage
    stage returns its alerts; a Pipeline returns only a flag and keeps its alerts for
    ``drain``, which is not timed: the worker drains once per checkpoint, not per event).

    CPU time (``process_time``), not wall time: the machine is shared, and a wall clock
    would charge this process for the time other processes held the core.
    """
    n, spent = 0, 0.0
    for batch in chunks(path, limit):
        t = time.process_time()
        if on_alerts is None:
            for event in batch:
                process(event)
        else:
            for event in batch:
                alerts = process(event)
                if alerts:
                    on_alerts(event, alerts)
        spent += time.process_time() - t
        n += len(batch)
    return n, spent


def hydra_report(
    labels: dict[str, dict],
    first_alert: dict[str, float],
    camp_start: dict[str, float],
    clusters: list[Cluster],
) -> None:
    alerted = [c for c in clusters if c.members and c.first_alert_ts is not None]
    covered = {m for c in alerted for m in c.members}
    campaigns: dict[str, set[str]] = defaultdict(set)
    for acct, lab in labels.items():
        if lab.get("archetype") == "hydra":
            campaigns[lab["campaign"]].add(acct)
    table = Table(title="hydra campaigns (linkage stage)")
    for col in ("campaign", "accounts", "covered by alerted cluster", "first cluster alert after"):
        table.add_column(col)
    for camp, accts in sorted(campaigns.items()):
        hits = [first_alert[a] for a in accts if a in first_alert]
        delay = f"{(min(hits) - camp_start[camp]) / 60:.0f} min" if hits else "never"
        table.add_row(
            camp,
            str(len(accts)),
            f"{len(accts & covered)} ({len(accts & covered) / len(accts):.1%})",
            delay,
        )
    console.print(table)
    # Final clusters hide an alert that named benign accounts and later dissolved.
    ever_benign = sum(labels.get(m, {}).get("label") == "benign" for m in first_alert)
    console.print(f"benign accounts named in any cluster alert at any time: {ever_benign}")
    members = [m for c in alerted for m in c.members]
    distillers = sum(labels.get(m, {}).get("label") == "distiller" for m in members)
    benign_in = [
        sum(labels.get(m, {}).get("label") == "benign" for m in c.members) for c in clusters
    ]
    largest = max(range(len(clusters)), key=lambda i: benign_in[i], default=None)
    console.print(
        f"alerted clusters: {len(alerted)}; member precision "
        f"{distillers / max(1, len(members)):.3f}; clusters formed: "
        f"{sum(1 for c in clusters if c.members)}; most benign accounts in one cluster: "
        f"{benign_in[largest] if largest is not None else 0}"
        + (
            f" ({clusters[largest].cluster_id}, alerted: "
            f"{clusters[largest].first_alert_ts is not None}, archetypes "
            f"{dict(Counter(labels[m]['archetype'] for m in clusters[largest].members))})"
            if largest is not None and benign_in[largest]
            else ""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="small")
    parser.add_argument("--events", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--limit", type=int, help="replay only the first N events")
    parser.add_argument(
        "--only",
        choices=["linkage", "account", "linked"],
        action="append",
        help="run only these pipelines (repeatable); default: all three",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a top-level linkage parameter, value in JSON (repeatable)",
    )
    args = parser.parse_args()
    args.events, args.labels = scenario_files(args.scenario, args.events, args.labels)
    labels = read_labels(args.labels)
    which = args.only or ["linkage", "account", "linked"]
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = orjson.loads(value)
    # the settings' detectors.linkage (default.yaml, DISTILLGUARD_CONFIG, environment), then --set
    shipped = get_settings().detectors.linkage.model_dump()
    config = LinkageConfig.model_validate({**shipped, **overrides})
    rows = []

    if "linkage" in which:
        stage = LinkageStage(config)
        first_alert: dict[str, float] = {}
        camp_start: dict[str, float] = {}

        def note(event: RequestEvent, alerts: tuple[Alert, ...]) -> None:
            for alert in alerts:
                for m in alert.members:
                    first_alert.setdefault(m, float(event.ts))

        if labels:
            # campaign starts, outside the timed loop
            for batch in chunks(args.events, args.limit):
                for e in batch:
                    camp = labels.get(e.account_id, {}).get("campaign")
                    if camp and camp not in camp_start:
                        camp_start[camp] = float(e.ts)
        n, spent = timed(args.events, args.limit, stage.process, note)
        rows.append(("linkage stage alone", n, spent))
        stats = stage.stats()
        snap = stage.snapshot()
        # An empty stage's snapshot is the fixed part (the provenance sketches' tables,
        # ~0.5 MB whatever the traffic); dividing it by a small run's few hundred accounts
        # reads as per-account state that a larger population never pays.
        fixed = len(LinkageStage(config).snapshot())
        accounts = max(1, stats["accounts"])
        console.print(
            f"linkage state: {stats}; snapshot {len(snap) / 1e6:.1f} MB: {fixed / 1e3:.0f} kB "
            f"fixed + {(len(snap) - fixed) / accounts:.0f} B per account "
            f"({len(snap) / accounts:.0f} B per account all in)"
        )
        if labels:
            hydra_report(labels, first_alert, camp_start, stage.drain_clusters())

    if "account" in which or "linked" in which:
        from distillguard.detectors.account_pipeline import AccountPipeline

        detectors = get_settings().detectors
        if "account" in which:
            n, spent = timed(args.events, args.limit, AccountPipeline(detectors).process)
            rows.append(("account pipeline", n, spent))
        if "linked" in which:
            account = AccountPipeline(detectors)
            # the stage reads the account pipeline's clock, as build_pipeline wires it
            linked = LinkedPipeline(account, LinkageStage(config, clock=account.clock))
            n, spent = timed(args.events, args.limit, linked.process)
            rows.append(("account + linkage (LinkedPipeline)", n, spent))

    table = Table(title=f"throughput on one core ({args.events.name}, process() only, CPU time)")
    for col in ("pipeline", "events", "CPU seconds", "events/s", "µs/event"):
        table.add_column(col, justify="right")
    for name, n, spent in rows:
        table.add_row(name, f"{n:,}", f"{spent:.1f}", f"{n / spent:,.0f}", f"{spent / n * 1e6:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
