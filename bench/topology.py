"""The split topology measured end to end: account workers + the cluster worker.

    .venv/bin/python bench/topology.py                 # `small`, embedded stack
    BENCH_STACKS=apache .venv/bin/python bench/topology.py
    .venv/bin/python bench/topology.py --scenario default --limit 300000

For one linked process (``--stage all``), then 1 and 2 account processes with the
cluster process, on a 6-partition topic: events per wall second end to end (from the
first event any process handled to the last one the cluster stage checkpointed), and
each process's CPU per event over the same window (what one core does per stage).
Then the hand-off topic's volume as a share of the input (``--volume-of FILE...``
prints only that, for any events files), and a sizing table: the
processes each stage needs for a given input rate, from the CPU figures. On this
2-core machine the processes share two cores, so the wall figures with three
processes are bounded by the machine, not by the design; the CPU per event is the
figure to size with.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from processes import cpu_seconds, handled, worker_env
from rich.console import Console
from rich.table import Table
from scenario_data import scenario_files

from distillguard.detectors.pipeline import build_pipeline
from distillguard.evaluation.replay import decoder_for
from distillguard.infra import EmbeddedStack
from distillguard.settings import Settings, Topics
from distillguard.stream.admin import ensure_topics
from distillguard.stream.handoff import encode_batches
from distillguard.stream.publish_file import publish_lines

ROOT = Path(__file__).resolve().parent.parent
console = Console()
WORKER = (sys.executable, "-m", "distillguard", "worker")
STACKS = {"embedded": ("tansu", "valkey"), "apache": ("kafka", "redis")}


def run_topology(
    stack: EmbeddedStack, topics: Topics, n: int, stages: list[tuple[str, str]]
) -> tuple[float, dict[str, float]]:
    """Start one process per (stage, instance); wait until every stage handled ``n``
    events; return (events per wall second, {process: µs of CPU per event})."""
    client = redis.Redis.from_url(stack.redis_url)
    client.flushdb()
    group = f"bench-topo-{uuid.uuid4().hex[:6]}"
    env = worker_env(stack, topics, group)
    procs = {
        f"{stage} {instance}".strip(): subprocess.Popen(
            [*WORKER, "--stage", stage, "--log-level", "WARNING"],
            env=env | {"DISTILLGUARD_WORKER__INSTANCE": instance},
            cwd=ROOT,
        )
        for stage, instance in stages
    }
    # each event is handled once by the account stage and once by the cluster stage
    total = n * (2 if any(stage == "cluster" for stage, _ in stages) else 1)
    start = None
    cpu0: dict[str, float] = {}
    try:
        while True:
            done = handled(client)
            if start is None and done:
                start = time.perf_counter()
                cpu0 = {name: cpu_seconds(p.pid) for name, p in procs.items()}
            if done >= total:
                break
            for name, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode}")
            time.sleep(0.02)
        assert start is not None
        wall = time.perf_counter() - start
        cpu = {name: (cpu_seconds(p.pid) - cpu0[name]) / n * 1e6 for name, p in procs.items()}
        return n / wall, cpu
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(30)


def handoff_share(lines: list[bytes]) -> tuple[float, float]:
    """Hand-off bytes as a share of the input's JSON bytes, and Kafka records per
    input event (one partition, checkpoints every 10,000 events)."""
    settings = Settings()
    split = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"stage": "account"})}
    )
    pipeline = build_pipeline(split)
    decode = decoder_for(settings).decode
    sent = records = 0
    start = 0
    for i, line in enumerate(lines):
        pipeline.process(decode(line))
        if i % 10_000 == 9_999 or i == len(lines) - 1:
            out = pipeline.drain()
            sources = [(0, o) for o in range(start, i + 1)]
            batches = encode_batches(out.handoff, sources, {0: i + 1})
            sent += sum(len(b) for _, b in batches)
            records += len(batches)
            start = i + 1
    return sent / sum(len(line) + 1 for line in lines), records / len(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="small")
    ap.add_argument("--limit", type=int, default=0, help="first N events (0: all)")
    ap.add_argument(
        "--volume-of",
        nargs="+",
        type=Path,
        metavar="EVENTS",
        help="only the hand-off's volume for these events files (no broker)",
    )
    args = ap.parse_args()
    if args.volume_of:
        for path in args.volume_of:
            share, _ = handoff_share(path.read_bytes().splitlines())
            console.print(f"{path}: hand-off {share:.1%} of the input's JSON bytes")
        return
    events, _ = scenario_files(args.scenario)
    lines = events.read_bytes().splitlines()
    if args.limit:
        lines = lines[: args.limit]
    n = len(lines)
    wanted = os.environ.get("BENCH_STACKS", "embedded").split(",")
    layouts = {
        "one process (--stage all)": [("all", "")],
        "1 account + cluster": [("account", "a0"), ("cluster", "")],
        "2 account + cluster": [("account", "a0"), ("account", "a1"), ("cluster", "")],
    }
    split: dict[str, float] = {}
    for label in wanted:
        broker, kind = STACKS[label]
        tag = uuid.uuid4().hex[:6]
        topics = Topics(
            requests=f"bt-{tag}", dead_letter=f"bt-{tag}.dlq", alerts=f"bt-{tag}.al", partitions=6
        )
        with EmbeddedStack(topics=topics, broker=broker, redis_kind=kind) as stack:
            ensure_topics(stack.bootstrap, topics)
            publish_lines(stack.bootstrap, topics.requests, lines)
            table = Table(title=f"split topology, `{args.scenario}` ({n:,} events), {label}")
            table.add_column("layout")
            table.add_column("events/s end to end", justify="right")
            table.add_column("µs CPU per event, per process", justify="left")
            for layout, stages in layouts.items():
                rate, cpu = run_topology(stack, topics, n, stages)
                cells = ", ".join(f"{name}: {us:.1f}" for name, us in cpu.items())
                table.add_row(layout, f"{rate:,.0f}", cells)
                split = cpu
            console.print(table)
    share, per_event = handoff_share(lines)
    console.print(
        f"hand-off topic: {per_event:.4f} Kafka records per input event, {share:.1%} of the"
        " input's JSON bytes (zlib-compressed batches of typed msgpack arrays; a prompt or an"
        " attribute only where the linkage reads it)"
    )
    console.print(f"[dim]{os.cpu_count()} cores; CPU per event from /proc of each process[/dim]")
    # Sizing from the last layout's CPU per event (2 account processes + the cluster one).
    account_us = sum(us for name, us in split.items() if name.startswith("account"))
    cluster_us = split.get("cluster", 0.0)
    sizing = Table(title="processes per stage (one core each, 70% busy), from the last layout")
    sizing.add_column("input events/s")
    sizing.add_column("account processes", justify="right")
    sizing.add_column("cluster process", justify="right")
    for rate in (10_000, 100_000, 1_000_000):
        cores = rate * cluster_us / 1e6 / 0.7
        sizing.add_row(
            f"{rate:,}",
            f"{math.ceil(rate * account_us / 1e6 / 0.7)}",
            "1" if cores <= 1 else f"over one core ({cores:.1f} cores of work)",
        )
    console.print(sizing)


if __name__ == "__main__":
    main()
