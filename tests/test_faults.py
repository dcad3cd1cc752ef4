"""Faults the worker meets in production: Redis restarts, brokers that lose their data,
and a stop requested while Redis is down. Nothing is lost or skipped silently."""

from __future__ import annotations

import asyncio
import signal
import time

import redis
import redis.asyncio as aredis

from distillguard.infra import EmbeddedStack
from distillguard.store import apikeys
from distillguard.stream.producer import EventPublisher
from tests.conftest import Lane, wait_for
from tests.helpers.synthetic import stream
from tests.test_worker import expected_counts, handled, publish, redis_counts


def _key_verifies(url: str, key: str) -> bool:
    async def check() -> bool:
        client = aredis.Redis.from_url(url)
        try:
            parsed = apikeys.parse(key)
            assert parsed is not None
            record = await apikeys.get_key(client, parsed[0])
            return record is not None and apikeys.verify(record, parsed[1])
        finally:
            await client.aclose()

    return asyncio.run(check())


def _create_key(url: str) -> str:
    async def create() -> str:
        client = aredis.Redis.from_url(url)
        try:
            _, key = await apikeys.create_key(client, "analyst", "survivor", "test")
            return key
        finally:
            await client.aclose()

    return asyncio.run(create())


def test_a_redis_restart_mid_stream_loses_nothing_and_keys_survive(
    lane: Lane, redis_client: redis.Redis, stack: EmbeddedStack
) -> None:
    key = _create_key(stack.redis_url)
    messages = list(stream(80_000, accounts=300, seed=11))
    publish(lane, messages)
    worker = lane.spawn("worker", DISTILLGUARD_WORKER__CHECKPOINT_INTERVAL_S="0.3")
    wait_for(lambda: handled(redis_client) > 5_000, 60, "the worker under way")
    mid_stream = handled(redis_client)
    stack.restart_valkey()  # SIGTERM: Redis writes its append-only file and stops
    fresh = redis.Redis.from_url(stack.redis_url)
    assert handled(fresh) >= mid_stream  # what was committed before is still there
    wait_for(lambda: handled(fresh) >= len(messages), 120, "every event after the restart")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err.decode()[-2000:]
    assert redis_counts(fresh) == expected_counts(messages)  # nothing lost, nothing twice
    assert mid_stream < len(messages)  # the restart fell mid-stream
    assert _key_verifies(stack.redis_url, key)  # API keys outlive the restart


def test_sigterm_during_a_redis_outage_stops_the_worker_within_ten_seconds(
    lane: Lane, redis_client: redis.Redis, stack: EmbeddedStack
) -> None:
    messages = list(stream(5_000, accounts=50, seed=12))
    publish(lane, messages)
    worker = lane.spawn("worker", DISTILLGUARD_WORKER__CHECKPOINT_INTERVAL_S="0.3")
    wait_for(lambda: handled(redis_client) > 0, 60, "the worker under way")
    valkey = stack.valkey
    assert valkey is not None
    valkey.send_signal(signal.SIGSTOP)  # Redis hangs: connections open, no answers
    try:
        publish(lane, list(stream(3_000, accounts=50, seed=13)))
        time.sleep(3)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        valkey.send_signal(signal.SIGCONT)
    assert elapsed < 10, f"stopped after {elapsed:.1f} s"
    # It could not checkpoint: it says so and exits non-zero; the next start re-reads.
    assert worker.returncode != 0
    assert b"resumes from the last checkpoint" in err


def test_a_broker_that_lost_its_topics_stops_the_worker_with_a_clear_error(
    lane: Lane, redis_client: redis.Redis, stack: EmbeddedStack
) -> None:
    """The topic is deleted and created again under the worker (Tansu's memory engine
    does that on a restart): reading on from the old offsets would skip events."""
    from kafka.admin import KafkaAdminClient

    from distillguard.stream.admin import ensure_topics

    messages = list(stream(6_000, accounts=60, seed=14))
    publish(lane, messages)
    worker = lane.spawn("worker", DISTILLGUARD_WORKER__CHECKPOINT_INTERVAL_S="0.3")
    wait_for(lambda: handled(redis_client) >= len(messages), 60, "the first topic processed")
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    try:
        admin.delete_topics([lane.topics.requests])
    finally:
        admin.close()
    time.sleep(1)
    ensure_topics(stack.bootstrap, lane.topics)
    with EventPublisher(stack.bootstrap, lane.topics.requests) as pub:
        for m in stream(2_000, accounts=20, seed=15):
            pub.send(m.key, m.value)
    _, err = worker.communicate(timeout=90)
    assert worker.returncode == 1, err.decode()[-2000:]
    text = err.decode()
    assert "checkpoint reset" in text and ("re-created" in text or "lost its data" in text)
    # what the first topic held was committed before the worker stopped
    assert redis_counts(redis_client) == expected_counts(messages)


def test_a_broker_restart_mid_stream_loses_and_doubles_nothing(
    lane: Lane, redis_client: redis.Redis, stack: EmbeddedStack
) -> None:
    """Apache Kafka keeps its log: the worker rides out the restart and carries on.

    (Tansu keeps its log in memory; its restart is the re-created-topic case above.)
    """
    assert stack.kafka is not None
    messages = list(stream(60_000, accounts=300, seed=16))
    publish(lane, messages[:30_000])
    worker = lane.spawn("worker", DISTILLGUARD_WORKER__CHECKPOINT_INTERVAL_S="0.3")
    wait_for(lambda: handled(redis_client) > 5_000, 90, "the worker under way")
    node = stack.kafka.members[0].node_id
    stack.kafka.stop_node(node)
    time.sleep(3)  # the worker polls a dead broker, its checkpoints' Kafka sends fail
    stack.kafka.start_node(node)
    publish(lane, messages[30_000:])
    wait_for(lambda: handled(redis_client) >= len(messages), 180, "every event after it")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err.decode()[-2000:]
    assert redis_counts(redis_client) == expected_counts(messages)
