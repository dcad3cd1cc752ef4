"""The streaming worker against the real embedded broker and Valkey.

Counts per account in Redis are the ground truth of exactly-once processing: a lost
event makes a count too low, a double-counted one too high.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from distillguard.detectors.pipeline import CountingPipeline
from distillguard.events import RequestEvent
from distillguard.settings import Settings
from distillguard.settings import Worker as WorkerSettings
from distillguard.store.schema import checkpoint_offsets as offsets_key
from distillguard.stream.checkpoint import COUNTS_KEY, STATS_KEY
from distillguard.stream.dead_letter import read_headers
from distillguard.stream.producer import EventPublisher
from distillguard.stream.worker import Worker
from tests.conftest import Lane, wait_for
from tests.helpers.replies import hash_fields
from tests.helpers.synthetic import MALFORMED_KINDS, Message, stream, valid_event


def publish(lane: Lane, messages: list[Message]) -> None:
    with EventPublisher(lane.stack.bootstrap, lane.topics.requests) as pub:
        for m in messages:
            pub.send(m.key, m.value)


def expected_counts(messages: list[Message]) -> Counter[str]:
    return Counter(m.key for m in messages if m.valid)


def redis_counts(client: redis.Redis) -> Counter[str]:
    return Counter({k.decode(): int(v) for k, v in hash_fields(client, COUNTS_KEY).items()})


def stat(client: redis.Redis, field: str) -> int:
    return int(client.hget(STATS_KEY, field) or 0)


def handled(client: redis.Redis) -> int:
    return sum(stat(client, f) for f in ("processed", "rejected", "duplicates"))


class StderrLines:
    """A child's stderr read on a thread, so a test can wait on what it has logged."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[tuple[float, str]] = []  # (monotonic time, line)
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            self.lines.append((time.monotonic(), raw.decode(errors="replace")))

    def join(self) -> str:
        self._thread.join(timeout=10)
        return "".join(line for _, line in self.lines)

    def assignments(self) -> list[dict[str, Any]]:
        return [
            orjson.loads(line)
            for _, line in list(self.lines)
            if line.startswith("{") and "partitions assigned" in line
        ]


def finish(proc: subprocess.Popen[bytes], timeout: float = 20) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode()


def read_topic(lane: Lane, topic: str, expected: int, timeout_s: float = 20) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=lane.stack.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    out: list[Any] = []  # kafka-python's ConsumerRecords (untyped)
    deadline = time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        out.extend(consumer)
    consumer.close()
    return out


def test_malformed_events_are_dead_lettered_and_valid_ones_counted_once(
    lane: Lane, redis_client: redis.Redis
) -> None:
    messages = list(stream(20_000, accounts=300, malformed_share=0.01))
    bad = [m for m in messages if not m.valid]
    assert {m.kind for m in bad} == set(MALFORMED_KINDS)  # the sample covers every kind
    publish(lane, messages)

    worker = lane.spawn("worker")
    wait_for(lambda: handled(redis_client) >= len(messages), 90, "all events handled")
    code, err = finish(worker)
    assert code == 0, err[-2000:]

    assert redis_counts(redis_client) == expected_counts(messages)
    assert stat(redis_client, "rejected") == len(bad)
    assert stat(redis_client, "duplicates") == 0

    dead = read_topic(lane, lane.topics.dead_letter, len(bad))
    assert sorted(m.value for m in dead) == sorted(m.value for m in bad)  # original bytes
    for record in dead:
        headers = read_headers(record.headers)
        assert headers["dlq.reason"]
        assert headers["dlq.source.topic"] == lane.topics.requests
        assert 0 <= int(headers["dlq.source.partition"]) < lane.topics.partitions
        assert int(headers["dlq.source.offset"]) >= 0
    reasons = " | ".join(read_headers(r.headers)["dlq.reason"] for r in dead)
    for fragment in ("UTF-8", "JSON", "missing required field", "ahead of", "exceeds"):
        assert fragment in reasons


def test_redelivered_and_republished_events_change_nothing(
    lane: Lane, redis_client: redis.Redis
) -> None:
    messages = list(stream(3_000, accounts=50))
    publish(lane, messages)
    publish(lane, messages[:500])  # an upstream retry publishes 500 events again
    worker = lane.spawn("worker")
    wait_for(lambda: handled(redis_client) >= 3_500, 60, "events handled")
    assert finish(worker)[0] == 0
    assert redis_counts(redis_client) == expected_counts(messages)
    assert stat(redis_client, "duplicates") == 500


def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    lane: Lane, redis_client: redis.Redis
) -> None:
    messages = list(stream(60_000, accounts=500, malformed_share=0.01, seed=11))
    publish(lane, messages)
    worker = lane.spawn("worker", DISTILLGUARD_WORKER__BATCH_MAX_RECORDS="500")
    wait_for(lambda: handled(redis_client) > 5_000, 60, "the worker to be mid-stream")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    killed_at = handled(redis_client)
    assert killed_at < len(messages), "killed too late to test anything"

    restarted = lane.spawn("worker", DISTILLGUARD_WORKER__BATCH_MAX_RECORDS="500")
    wait_for(lambda: handled(redis_client) >= len(messages), 120, "all events handled")
    assert finish(restarted)[0] == 0
    assert redis_counts(redis_client) == expected_counts(messages)
    assert stat(redis_client, "rejected") == sum(not m.valid for m in messages)


def test_two_workers_split_partitions_and_count_exactly_once(
    lane: Lane, redis_client: redis.Redis
) -> None:
    messages = list(stream(30_000, accounts=400, seed=5))
    workers = [
        lane.spawn(
            "worker",
            DISTILLGUARD_WORKER__BATCH_MAX_RECORDS="1000",
            DISTILLGUARD_WORKER__INSTANCE=f"w{i}",  # each its own shared state and ids
        )
        for i in range(2)
    ]
    readers = [StderrLines(w) for w in workers]

    def split() -> bool:
        """Both members hold partitions: the group formed before anything is published
        (a worker slow to start under load would otherwise find the stream done)."""
        last = [r.assignments()[-1:] for r in readers]
        return all(a and a[0]["partitions"] for a in last)

    wait_for(split, 90, "both workers to hold partitions")
    publish(lane, messages)
    wait_for(lambda: handled(redis_client) >= len(messages), 120, "all events handled")
    # Both asked to stop at once; what counts is how they shared the partitions before:
    # while one stops, the other may take its partitions for a moment (Kafka does).
    stopping = time.time()
    for w in workers:
        w.send_signal(signal.SIGTERM)
    codes = [w.wait(30) for w in workers]
    logs = [r.join() for r in readers]
    assert all(code == 0 for code in codes), [err[-1500:] for err in logs]
    assert redis_counts(redis_client) == expected_counts(messages)

    final: list[set[int]] = []
    history: list[list[tuple[float, list[int]]]] = []
    for reader in readers:
        assigned = [r for r in reader.assignments() if r["ts"] < stopping]
        assert assigned, "a worker never got partitions"
        final.append(set(assigned[-1]["partitions"]))
        history.append([(round(r["ts"] - stopping, 2), r["partitions"]) for r in assigned])
    assert final[0] and final[1] and not final[0] & final[1], history
    assert final[0] | final[1] == set(range(lane.topics.partitions))


def test_sigterm_finishes_the_batch_and_commits_offsets_everywhere(
    lane: Lane, redis_client: redis.Redis
) -> None:
    messages = list(stream(5_000, accounts=40, seed=3))
    publish(lane, messages)
    worker = lane.spawn("worker")
    wait_for(lambda: handled(redis_client) >= len(messages), 60, "events handled")
    code, err = finish(worker)
    assert code == 0, err[-2000:]
    assert '"worker stopped"' in err

    stored = {
        int(p): int(o)
        for p, o in redis_client.hgetall(offsets_key(lane.group, lane.topics.requests)).items()
    }
    consumer = KafkaConsumer(
        bootstrap_servers=lane.stack.bootstrap, group_id=lane.group, enable_auto_commit=False
    )
    committed = {p: consumer.committed(TopicPartition(lane.topics.requests, p)) for p in stored}
    consumer.close()
    assert committed == stored
    assert sum(stored.values()) == len(messages)


def test_a_new_group_consumes_within_seconds_of_start(
    lane: Lane, redis_client: redis.Redis
) -> None:
    """With kafka-python's default 45 s session timeout Tansu held a new group ~23 s.

    Timed from the worker's own "worker started" line, so interpreter start-up on a
    loaded machine (several seconds under CI) is not counted; the join delay is.
    """
    publish(lane, [Message("a", orjson.dumps(valid_event(1, "a")), True)])
    worker = lane.spawn("worker")
    reader = StderrLines(worker)
    wait_for(lambda: handled(redis_client) >= 1, 40, "the first event")
    first_event = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    log = reader.join()
    started = [at for at, line in reader.lines if "worker started" in line]
    assert started, log[-2000:]
    elapsed = first_event - started[0]
    # Half the old 45 s session timeout is ~23 s; with 6 s it is ~3 s plus one poll.
    assert elapsed < 15, f"first event {elapsed:.1f}s after the worker started"


@pytest.mark.parametrize("field", ["DISTILLGUARD_KAFKA_BOOTSTRAP", "DISTILLGUARD_REDIS_URL"])
def test_env_overrides_reach_the_settings(field: str) -> None:
    from distillguard.settings import Settings

    os.environ[field] = "example:1234"
    try:
        s = Settings()
        assert "example:1234" in (s.kafka_bootstrap if "KAFKA" in field else s.redis_url)
    finally:
        del os.environ[field]


class _FragilePipeline(CountingPipeline):
    """A detector with a bug that only one account's events trigger.

    It raises before counting, as a detector that fails before changing any state:
    the poisoned account's events must reach the DLQ and nowhere else.
    """

    def process(self, event: RequestEvent) -> bool:
        if event.account_id == "acct-0007":
            raise ZeroDivisionError("bug in a detector")
        return super().process(event)


def test_a_detector_error_dead_letters_the_event_and_the_worker_goes_on(
    lane: Lane, redis_client: redis.Redis
) -> None:
    messages = list(stream(2_000, accounts=20, seed=9))
    publish(lane, messages)
    settings = Settings(
        kafka_bootstrap=lane.stack.bootstrap,
        redis_url=lane.stack.redis_url,
        topics=lane.topics,
        worker=WorkerSettings(group_id=lane.group),
    )
    stats = Worker(settings, _FragilePipeline()).run(max_idle_s=3)
    poisoned = [m for m in messages if m.key == "acct-0007"]
    assert poisoned
    assert stats.rejected == len(poisoned)
    expected = expected_counts(messages)
    del expected["acct-0007"]
    assert redis_counts(redis_client) == expected
    dead = read_topic(lane, lane.topics.dead_letter, len(poisoned))
    assert len(dead) == len(poisoned)
    assert all("ZeroDivisionError" in read_headers(r.headers)["dlq.reason"] for r in dead)
