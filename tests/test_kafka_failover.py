"""Failures a Kafka cluster has, on a real three-node Apache Kafka (KRaft) cluster.

Replication factor 3 and ``min.insync.replicas`` 2, as a production cluster is run:
one broker may die and ``acks=all`` writes go on; with two gone writes must fail
(refused, not acknowledged and lost), and when the brokers come back everything
resumes. The embedded broker has no replication, so none of this can be tested on it.

Ground truth is the counting pipeline's per-account counts in Redis (as in
``test_worker``): an event lost makes a count too low, one counted twice too high.
The producer here is the test's own, so that every send's outcome is seen: an event
counts as published only once the cluster acknowledged it, and one that was refused
is sent again after the cluster recovers (a refused send may still have reached the
leader's log: the worker's ``event_id`` de-duplication must absorb that copy).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from distillguard.kafka_broker import KafkaCluster
from distillguard.redis_server import RedisServer
from distillguard.settings import Topics
from distillguard.store import schema
from distillguard.stream.admin import ensure_topics
from distillguard.stream.dead_letter import read_headers
from tests.conftest import ROOT, process_alive, wait_for
from tests.helpers.synthetic import Message, valid_event

pytestmark = pytest.mark.slow

REPLICATION, MIN_ISR = 3, 2
#: Apache Kafka's default ``message.max.bytes`` (the cluster here keeps it).
BROKER_MESSAGE_MAX_BYTES = 1_048_588


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three combined broker+controller nodes with Kafka's default size limits."""
    with KafkaCluster(
        nodes=3,
        workdir=tmp_path_factory.mktemp("kafka-cluster"),
        min_insync_replicas=MIN_ISR,
        message_max_bytes=None,
    ) as c:
        yield c


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(workdir=tmp_path_factory.mktemp("redis")) as r:
        yield r


@pytest.fixture
def client(store: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(store.url)
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


def _all_up(cluster: KafkaCluster) -> None:
    """Start every stopped node again (same ports and data) and wait until all serve."""
    for node in cluster.members:
        if not node.running():
            cluster.start_node(node.node_id)


def _topics() -> Topics:
    tag = uuid.uuid4().hex[:8]
    return Topics(
        requests=f"fo-{tag}",
        dead_letter=f"fo-{tag}.dlq",
        alerts=f"fo-{tag}.alerts",
        partitions=6,
        replication_factor=REPLICATION,
        min_insync_replicas=MIN_ISR,
    )


def _worker(
    cluster: KafkaCluster, store: RedisServer, topics: Topics, log: Path
) -> subprocess.Popen[bytes]:
    """``distillguard worker`` (counting pipeline) on the cluster, logging to ``log``.

    Its log goes to a file, not a pipe: a broker outage makes kafka-python log a lot,
    and a full pipe would stall the worker.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    env.update(
        DISTILLGUARD_KAFKA_BOOTSTRAP=cluster.bootstrap,
        DISTILLGUARD_REDIS_URL=store.url,
        DISTILLGUARD_TOPICS__REQUESTS=topics.requests,
        DISTILLGUARD_TOPICS__DEAD_LETTER=topics.dead_letter,
        DISTILLGUARD_TOPICS__ALERTS=topics.alerts,
        DISTILLGUARD_TOPICS__PARTITIONS=str(topics.partitions),
        DISTILLGUARD_TOPICS__REPLICATION_FACTOR=str(topics.replication_factor),
        DISTILLGUARD_TOPICS__MIN_INSYNC_REPLICAS=str(topics.min_insync_replicas),
        DISTILLGUARD_WORKER__GROUP_ID=f"g-{topics.requests}",
        DISTILLGUARD_WORKER__BATCH_MAX_RECORDS="500",
        DISTILLGUARD_DETECTORS__PIPELINE="counting",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "distillguard", "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _counts(client: redis.Redis) -> Counter[str]:
    raw = cast("dict[bytes, bytes]", client.hgetall(schema.ACCOUNT_REQUESTS))
    return Counter({k.decode(): int(v) for k, v in raw.items()})


def _stat(client: redis.Redis, name: str) -> int:
    return int(client.hget(schema.WORKER_STATS, name) or 0)


def _leaders(cluster: KafkaCluster, topic: str) -> dict[int, int]:
    """Partition -> node id of its leader, as the cluster's metadata says now."""
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=5000)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return {p["partition_index"]: p["leader_id"] for p in described["partitions"]}


@dataclass
class Outcome:
    """What the cluster said about a set of sends."""

    acked: list[Message] = field(default_factory=list)
    refused: list[Message] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def _send(producer: KafkaProducer, topic: str, messages: list[Message], wait_s: float) -> Outcome:
    """Send, wait for every outcome; unacknowledged within ``wait_s`` counts as refused."""
    futures: list[tuple[Message, FutureRecordMetadata]] = [
        (m, producer.send(topic, key=m.key.encode(), value=m.value)) for m in messages
    ]
    producer.flush(timeout=wait_s)
    out = Outcome()
    for m, f in futures:
        if f.is_done and f.exception is None:
            out.acked.append(m)
        else:
            out.refused.append(m)
            out.errors[type(f.exception).__name__ if f.is_done else "unconfirmed"] += 1
    return out


def _send_until_acked(
    producer: KafkaProducer, topic: str, messages: list[Message], deadline_s: float
) -> Outcome:
    """Re-send what was refused until all is acknowledged (leader elections take seconds)."""
    total = Outcome()
    todo = messages
    deadline = time.monotonic() + deadline_s
    while todo:
        assert time.monotonic() < deadline, f"{len(todo)} sends still refused: {total.errors}"
        out = _send(producer, topic, todo, wait_s=30)
        total.acked += out.acked
        total.errors += out.errors
        todo = out.refused
        if todo:
            time.sleep(0.5)
    return total


def _events(n: int, accounts: int, first: int = 0) -> list[Message]:
    out = []
    for i in range(first, first + n):
        account = f"acct-{i % accounts:04d}"
        out.append(Message(account, orjson.dumps(valid_event(i, account)), True))
    return out


def test_brokers_fail_and_return_mid_stream_nothing_lost_or_counted_twice(
    cluster: KafkaCluster, store: RedisServer, client: redis.Redis, tmp_path: Path
) -> None:
    topics = _topics()
    ensure_topics(cluster.bootstrap, topics, timeout_s=60)
    events = _events(30_000, accounts=300)
    chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]
    started = time.monotonic()
    timeline: list[str] = []

    def note(what: str) -> None:
        timeline.append(f"{time.monotonic() - started:6.1f}s  {what}")

    worker = _worker(cluster, store, topics, tmp_path / "worker.log")
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap,
        acks="all",
        enable_idempotence=False,  # retries may duplicate: the worker must absorb that
        linger_ms=5,
        request_timeout_ms=10_000,
        delivery_timeout_ms=20_000,
        max_block_ms=10_000,
    )
    acked: list[Message] = []
    try:
        # 1. All three up; mid-stream the leader of the most partitions crashes (SIGKILL).
        for i, chunk in enumerate(chunks[:10]):
            if i == 5:
                leaders = Counter(_leaders(cluster, topics.requests).values())
                first, led = leaders.most_common(1)[0]
                cluster.stop_node(first, kill=True)
                note(f"SIGKILL node {first} (leader of {led}/6 partitions); {len(acked)} acked")
            acked += _send_until_acked(producer, topics.requests, chunk, 90).acked
        note(f"{len(acked)} acked with one broker down")
        wait_for(lambda: _stat(client, "processed") > 0, 60, "the worker to start processing")

        # 2. A second broker stops (controlled): one replica left, below min.insync.replicas.
        survivors = Counter(n for n in _leaders(cluster, topics.requests).values() if n != first)
        second = max(
            (n.node_id for n in cluster.members if n.node_id != first),
            key=lambda n: survivors.get(n, 0),
        )
        cluster.stop_node(second)
        note(f"SIGTERM node {second}: only one broker left")
        offered = [m for chunk in chunks[10:15] for m in chunk]
        degraded = _send(producer, topics.requests, offered, wait_s=30)
        note(
            f"{len(offered)} offered with one broker: {len(degraded.acked)} acked, "
            f"{len(degraded.refused)} refused ({dict(degraded.errors)})"
        )
        assert not degraded.acked, "acks=all acknowledged a write held by one replica"
        assert degraded.refused
        # Not asserted: whether the worker keeps reading meanwhile. __consumer_offsets is
        # under min.insync.replicas too, so offset commits fail and a member whose session
        # lapsed cannot rejoin until a second broker is back (Kafka's semantics).
        note(f"worker meanwhile: {_stat(client, 'processed')} of {len(acked)} acked processed")

        # 3. Both come back; the refused events are sent again, then the rest.
        cluster.start_node(second)
        note(f"node {second} back")
        cluster.start_node(first)
        note(f"node {first} back")
        acked += _send_until_acked(producer, topics.requests, degraded.refused, 120).acked
        for chunk in chunks[15:]:
            acked += _send_until_acked(producer, topics.requests, chunk, 90).acked
        note(f"all {len(acked)} events acked")
    finally:
        producer.close(timeout=10)
        _all_up(cluster)  # whatever happened, the next test gets three brokers

    expected = Counter(m.key for m in events)
    assert len(acked) == len(events)
    wait_for(lambda: sum(_counts(client).values()) >= len(events), 180, "every event counted")
    time.sleep(2)  # a late duplicate would show up now
    counts = _counts(client)
    duplicates = _stat(client, "duplicates")
    note(f"counted {sum(counts.values())} events, {duplicates} duplicate deliveries absorbed")
    print("\n".join(timeline))
    assert process_alive(worker.pid), "the worker did not carry on through the outage"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert counts == expected  # nothing lost, nothing counted twice
    assert _stat(client, "rejected") == 0


def test_a_record_the_dead_letter_topic_cannot_take_is_dead_lettered_with_its_reason(
    cluster: KafkaCluster, store: RedisServer, client: redis.Redis, tmp_path: Path
) -> None:
    """A request just under the broker's limit is refused by the decoder (its prompt is
    too long); its dead letter (the same bytes plus reason headers) is over the limit.
    It must still reach the dead-letter topic, cut to fit and saying so, never vanish."""
    _all_up(cluster)
    topics = _topics()
    ensure_topics(cluster.bootstrap, topics, timeout_s=60)
    event = valid_event(0, "acct-big")
    event["prompt"] = ""
    base = len(orjson.dumps(event))
    # the request record batch ends up a few dozen bytes under message.max.bytes
    event["prompt"] = "y" * (BROKER_MESSAGE_MAX_BYTES - 200 - base)
    big = orjson.dumps(event)
    small = [
        Message("acct-small", orjson.dumps(valid_event(i, "acct-small")), True) for i in (1, 2)
    ]
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", max_request_size=2 * 1024 * 1024
    )
    meta = producer.send(topics.requests, key=b"acct-big", value=big).get(timeout=30)
    for m in small:
        producer.send(topics.requests, key=m.key.encode(), value=m.value).get(timeout=30)
    producer.close()

    worker = _worker(cluster, store, topics, tmp_path / "worker.log")
    try:
        wait_for(
            lambda: _stat(client, "processed") + _stat(client, "rejected") >= 3,
            90,
            "all three records handled",
        )
        consumer = KafkaConsumer(
            topics.dead_letter,
            bootstrap_servers=cluster.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
            max_partition_fetch_bytes=2 * 1024 * 1024,
        )
        dead = list(consumer)
        consumer.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert _stat(client, "rejected") == 1 and _stat(client, "processed") == 2
    assert len(dead) == 1, "the oversized dead letter vanished"
    headers = read_headers(dead[0].headers)
    assert "exceeds" in headers["dlq.reason"]
    assert headers["dlq.source.partition"] == str(meta.partition)
    assert headers["dlq.source.offset"] == str(meta.offset)
    assert big.startswith(dead[0].value)  # cut to fit, from the start
