"""Does the split topology reach one process's answer on a scenario? Prints the comparison.

    .venv/bin/python scripts/measure_topology.py                       # default, 300k events
    .venv/bin/python scripts/measure_topology.py --scenario small --limit 0
    .venv/bin/python scripts/measure_topology.py --stack apache --accounts 3

Publishes the scenario's events to a 6-partition topic on a fresh stack, runs one
process (``--stage all``) over it, then ``--accounts`` account workers and the cluster
worker side by side, and compares what each left in the store: clusters (member
sets), cluster alerts (member sets and levels), account alerts, and every account's
reported risk (the risk lookup's join). ``tests/test_topology.py`` asserts the same on
``small``; this is the figure for larger traffic. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import redis
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scenario_data import scenario_files  # noqa: E402

from distillguard.detectors.pipeline import build_pipeline  # noqa: E402
from distillguard.infra import EmbeddedStack  # noqa: E402
from distillguard.settings import Settings, Topics  # noqa: E402
from distillguard.settings import Worker as WorkerSettings  # noqa: E402
from distillguard.stream.admin import ensure_topics  # noqa: E402
from distillguard.stream.publish_file import publish_lines  # noqa: E402
from distillguard.stream.sinks import default_sink  # noqa: E402
from distillguard.stream.worker import Worker  # noqa: E402
from tests.helpers.outcomes import Outcome, from_store  # noqa: E402

console = Console()
STACKS = {"embedded": ("tansu", "valkey"), "apache": ("kafka", "redis")}


def _settings(stack: EmbeddedStack, topics: Topics, db: int, group: str, **worker: str) -> Settings:
    url = stack.redis_url.rsplit("/", 1)[0] + f"/{db}"
    return Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=url,
        topics=topics,
        worker=WorkerSettings(group_id=group, **worker),  # type: ignore[arg-type]
    )


def _run(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    Worker(settings, build_pipeline(settings), sink=default_sink(settings, client)).run(
        max_idle_s=8.0
    )


def _together(settings: list[Settings]) -> None:
    threads = [threading.Thread(target=_run, args=(s,)) for s in settings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _outcome(url: str) -> Outcome:
    client = redis.Redis.from_url(url)
    outcome = from_store(client)
    client.flushdb()
    return outcome


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--limit", type=int, default=300_000, help="first N events (0: all)")
    ap.add_argument("--stack", choices=sorted(STACKS), default="embedded")
    ap.add_argument("--accounts", type=int, default=3, help="account worker processes")
    args = ap.parse_args()
    events, _ = scenario_files(args.scenario)
    lines = events.read_bytes().splitlines()
    if args.limit:
        lines = lines[: args.limit]
    broker, kind = STACKS[args.stack]
    tag = uuid.uuid4().hex[:6]
    topics = Topics(
        requests=f"mt-{tag}", dead_letter=f"mt-{tag}.dlq", alerts=f"mt-{tag}.al", partitions=6
    )
    with EmbeddedStack(topics=topics, broker=broker, redis_kind=kind) as stack:
        ensure_topics(stack.bootstrap, topics)
        publish_lines(stack.bootstrap, topics.requests, lines)
        for db in (1, 2):
            redis.Redis.from_url(stack.redis_url.rsplit("/", 1)[0] + f"/{db}").flushdb()
        t = time.perf_counter()
        one = _settings(stack, topics, 1, f"one-{tag}")
        _run(one)
        one_s = time.perf_counter() - t
        reference = _outcome(one.redis_url)
        group = f"split-{tag}"
        split = [
            _settings(stack, topics, 2, group, stage="account", instance=f"a{i}")
            for i in range(args.accounts)
        ]
        split.append(_settings(stack, topics, 2, group, stage="cluster"))
        t = time.perf_counter()
        _together(split)
        split_s = time.perf_counter() - t
        topology = _outcome(split[0].redis_url)

    console.print(
        f"`{args.scenario}` ({len(lines):,} events), {args.stack} stack: one process"
        f" {one_s:.0f} s; {args.accounts} account workers + the cluster worker {split_s:.0f} s"
        " (both including 8 s of idle before exit)"
    )
    ref_alerts = set(reference.cluster_alerts.values())
    top_alerts = set(topology.cluster_alerts.values())
    console.print(
        f"clusters: {len(reference.memberships())} in one process, the same member sets in"
        f" the topology: {topology.memberships() == reference.memberships()}"
        f" ({len(reference.memberships() ^ topology.memberships())} differ)"
    )
    console.print(
        f"cluster alerts: {len(ref_alerts)}; the same members and levels: "
        f"{top_alerts == ref_alerts} ({len(ref_alerts ^ top_alerts)} differ)"
    )
    same_level = sum(
        1 for a, lvl in reference.account_alerts.items() if topology.account_alerts.get(a) == lvl
    )
    console.print(
        f"account alerts: {len(reference.account_alerts)} in one process,"
        f" {len(topology.account_alerts)} in the topology, {same_level} the same account"
        " and level"
    )
    accounts = set(reference.risks) | set(topology.risks)
    gaps = sorted(abs(reference.risks.get(a, 0.0) - topology.risks.get(a, 0.0)) for a in accounts)
    for tol in (0.0, 0.01, 0.05):
        over = sum(1 for g in gaps if g > tol)
        console.print(f"risks differing by more than {tol}: {over} of {len(gaps)}")
    if gaps:
        console.print(f"largest risk difference: {gaps[-1]:.4f}")
    console.print("differences at the tests' tolerance:", topology.differences(reference) or "none")


if __name__ == "__main__":
    main()
