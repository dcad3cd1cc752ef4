"""``make bench``: throughput figures of the plumbing, then each area's own benchmark.

The plumbing (produce, the read + decode ceiling, the worker end to end) is measured
on both stacks and printed side by side: the embedded pair (Tansu + Valkey) and
production's parts (Apache Kafka in KRaft mode + Redis), so a figure that holds on
one and not the other shows. ``BENCH_STACKS=embedded`` (or ``apache``) measures one.

Prints figures; asserts nothing. Figures depend on the machine and on what else runs
on it, so compare runs made on the same machine back to back.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import orjson
import redis
from kafka import KafkaConsumer
from processes import cpu_seconds, handled, worker_env
from rich.console import Console
from rich.table import Table
from scenario_data import scenario_files

from distillguard.events import EventDecoder, RequestEvent
from distillguard.infra import EmbeddedStack
from distillguard.kafka_broker import JVM_OPTIONS_ENV, KAFKA_VERSION
from distillguard.settings import Topics
from distillguard.stream.admin import ensure_topics
from distillguard.stream.producer import EventPublisher
from distillguard.stream.publish_file import account_key

if TYPE_CHECKING:
    from tests.helpers.synthetic import Message

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_EVENTS", "200000"))
console = Console()


def stream(n: int, accounts: int = 200) -> Iterator[Message]:
    """The tests' plain synthetic events: test code, imported from the checkout's tests/."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.helpers.synthetic import stream as synthetic_stream

    return synthetic_stream(n, accounts=accounts)


def decode_only(payloads: list[bytes]) -> dict[str, float]:
    """CPU cost of turning bytes into a validated event, two ways."""
    out = {}
    t = time.perf_counter()
    for raw in payloads:
        orjson.loads(raw)
    out["orjson.loads (no validation)"] = len(payloads) / (time.perf_counter() - t)
    plain = msgspec.json.Decoder(RequestEvent)
    t = time.perf_counter()
    for raw in payloads:
        plain.decode(raw)
    out["msgspec typed decode"] = len(payloads) / (time.perf_counter() - t)
    dec = EventDecoder()
    t = time.perf_counter()
    for raw in payloads:
        dec.decode(raw)
    out["EventDecoder (typed + all checks)"] = len(payloads) / (time.perf_counter() - t)
    return out


def read_decode(bootstrap: str, topic: str, n: int) -> float:
    """The ceiling: a bare group-less consumer reading and decoding, nothing else."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    dec = EventDecoder()
    seen = 0
    start = None
    while seen < n:
        for msgs in consumer.poll(timeout_ms=1000).values():
            if start is None:
                start = time.perf_counter()
            for m in msgs:
                dec.decode(m.value)
            seen += len(msgs)
    consumer.close()
    assert start is not None
    return n / (time.perf_counter() - start)


def worker_end_to_end(
    stack: EmbeddedStack, topics: Topics, n: int, pipeline: str = "counting"
) -> tuple[float, float]:
    """Broker -> decode -> dedup -> pipeline -> Redis (state, risks, alerts) -> commit.

    One worker process; returns (events per wall second, events per CPU second of the
    worker), both from its first handled event to its last, so start-up and group join
    are excluded. The CPU figure is what one core would do with the machine to itself.
    """
    client = redis.Redis.from_url(stack.redis_url)
    client.flushdb()
    env = worker_env(stack, topics, f"bench-{uuid.uuid4().hex[:6]}") | {
        "DISTILLGUARD_DETECTORS__PIPELINE": pipeline
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillguard", "worker", "--log-level", "WARNING"],
        env=env,
        cwd=ROOT,
    )
    start = None
    first = 0
    cpu0 = 0.0
    try:
        while True:
            done = handled(client)
            if start is None and done:
                start, first, cpu0 = time.perf_counter(), done, cpu_seconds(proc.pid)
            if done >= n:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}")
            time.sleep(0.02)
        assert start is not None
        wall = time.perf_counter() - start
        cpu = cpu_seconds(proc.pid) - cpu0
        return (n - first) / wall, (n - first) / max(cpu, 1e-9)
    finally:
        proc.terminate()
        proc.wait(30)


#: Detector pipelines measured in the worker on simulated traffic (settings names).
DETECTOR_PIPELINES = ("account", "linked")


def simulated_events() -> list[bytes]:
    """The `small` scenario's events (realistic prompts and behaviour)."""
    events, _ = scenario_files("small")
    return events.read_bytes().splitlines()


#: Stacks measured side by side: (label, broker, redis) as EmbeddedStack names them.
STACKS = (("embedded", "tansu", "valkey"), ("apache", "kafka", "redis"))


def plumbing_on(
    broker: str, redis_kind: str, tag: str, sim_events: list[bytes]
) -> dict[str, tuple[float, float | None]]:
    """Stage -> (events/s, events per CPU-second of the worker) on one stack."""
    topics = Topics(
        requests=f"bench-{tag}",
        dead_letter=f"bench-{tag}.dlq",
        alerts=f"bench-{tag}.alerts",
        partitions=6,
    )
    rows: dict[str, tuple[float, float | None]] = {}
    with EmbeddedStack(topics=topics, broker=broker, redis_kind=redis_kind) as stack:
        ensure_topics(stack.bootstrap, topics)
        t = time.perf_counter()
        with EventPublisher(stack.bootstrap, topics.requests) as pub:
            for m in stream(N, accounts=2000):
                pub.send(m.key, m.value)
        rows["produce (EventPublisher)"] = (N / (time.perf_counter() - t), None)
        rows["kafka read + decode ceiling"] = (
            read_decode(stack.bootstrap, topics.requests, N),
            None,
        )
        rows["worker end to end (counting pipeline)"] = worker_end_to_end(stack, topics, N)
        sim_topics = Topics(
            requests=f"bench-sim-{tag}",
            dead_letter=f"bench-sim-{tag}.dlq",
            alerts=f"bench-sim-{tag}.alerts",
            partitions=6,
        )
        ensure_topics(stack.bootstrap, sim_topics)
        with EventPublisher(stack.bootstrap, sim_topics.requests) as pub:
            for line in sim_events:
                pub.send(account_key(line), line)
        for pipeline in DETECTOR_PIPELINES:
            rows[f"worker end to end ({pipeline} pipeline, `small` scenario)"] = worker_end_to_end(
                stack, sim_topics, len(sim_events), pipeline
            )
    return rows


def main() -> None:
    logging.getLogger("kafka").setLevel(logging.ERROR)  # "task ran for 0.1 s" under load
    payloads = [m.value for m in stream(50_000)]
    decode = Table(title="decoding (one process, no broker)")
    decode.add_column("stage")
    decode.add_column("events/s", justify="right")
    for name, rate in decode_only(payloads).items():
        decode.add_row(f"decode: {name}", f"{rate:,.0f}")
    console.print(decode)

    # BENCH_STACKS=embedded (or apache) measures one stack only.
    wanted = os.environ.get("BENCH_STACKS", "embedded,apache").split(",")
    stacks = [s for s in STACKS if s[0] in wanted]
    # The broker as production runs it: the JVM's own JIT and GC, not the tests'
    # quick-start options (distillguard.kafka_broker.JVM_OPTIONS).
    os.environ.setdefault(JVM_OPTIONS_ENV, "")
    sim_events = simulated_events()
    tag = uuid.uuid4().hex[:6]
    measured = [plumbing_on(broker, kind, tag, sim_events) for _, broker, kind in stacks]
    table = Table(
        title="distillguard plumbing on each stack (one worker process)",
        caption=f"embedded: Tansu + Valkey; apache: Apache Kafka {KAFKA_VERSION} (KRaft) + Redis",
    )
    table.add_column("stage")
    for label, _, _ in stacks:
        table.add_column(f"{label} events/s", justify="right")
        table.add_column(f"{label} per CPU-s", justify="right")
    for stage in measured[0]:
        cells = []
        for rows in measured:
            rate, cpu = rows[stage]
            cells += [f"{rate:,.0f}", "" if cpu is None else f"{cpu:,.0f}"]
        table.add_row(stage, *cells)
    console.print(table)
    console.print(
        f"[dim]{N:,} events of ~{sum(map(len, payloads)) / len(payloads):.0f} bytes, "
        f"{os.cpu_count()} cores; per CPU-second: of the worker process[/dim]"
    )

    # BENCH_ONLY=plumbing skips the areas' own benchmarks.
    if os.environ.get("BENCH_ONLY") == "plumbing":
        return
    for script in (
        "detectors.py",
        "linkage.py",
        "topology_volume.py",
        "topology.py",
        "api_latency.py",
    ):
        path = ROOT / "bench" / script
        if path.exists():
            console.rule(script)
            subprocess.run([sys.executable, str(path)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
