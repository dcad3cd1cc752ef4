"""Topics are checked, never auto-created, and a re-created topic is detectable.

Against a real embedded broker (Tansu) of this module's own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from distillguard.infra import EmbeddedStack
from distillguard.settings import Settings, Topics, Worker
from distillguard.stream.admin import TopicMismatch, check_topics, ensure_topics, topic_ids
from distillguard.stream.consumer import (
    ConsumerRebalanceListener,
    TopicPartition,
    offsets_beyond_end,
    open_consumer,
)


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack() as s:
        yield s


@pytest.fixture
def admin(stack: EmbeddedStack) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    yield client
    client.close()


def private_topics(**extra: Any) -> Topics:
    tag = uuid.uuid4().hex[:8]
    return Topics(requests=f"t-{tag}", dead_letter=f"t-{tag}.dlq", alerts=f"t-{tag}.al", **extra)


def settings_for(stack: EmbeddedStack, topics: Topics, group: str = "g") -> Settings:
    return Settings(
        kafka_bootstrap=stack.bootstrap,
        topics=topics,
        worker=Worker(group_id=f"{group}-{uuid.uuid4().hex[:6]}"),
    )


def test_created_topics_pass_the_check(stack: EmbeddedStack, admin: KafkaAdminClient) -> None:
    topics = private_topics(partitions=3)
    names = ensure_topics(stack.bootstrap, topics)
    assert {topics.requests, topics.dead_letter, topics.alerts} <= set(names)
    check_topics(settings_for(stack, topics))
    ensure_topics(stack.bootstrap, topics)  # idempotent


def test_a_missing_topic_is_a_mismatch_and_is_not_created(
    stack: EmbeddedStack, admin: KafkaAdminClient
) -> None:
    topics = private_topics()
    with pytest.raises(TopicMismatch) as info:
        check_topics(settings_for(stack, topics), timeout_s=2)
    assert f"topic {topics.requests!r} does not exist" in str(info.value)
    assert len(info.value.problems) == 3
    assert topics.requests not in admin.list_topics()


def test_partition_count_replication_and_min_isr_are_checked(
    stack: EmbeddedStack, admin: KafkaAdminClient
) -> None:
    topics = private_topics(partitions=6)
    # Made by hand (or auto-created): 4 partitions and min.insync.replicas 2.
    admin.create_topics(
        [NewTopic(topics.requests, 4, 1, topic_configs={"min.insync.replicas": "2"})]
    )
    with pytest.raises(TopicMismatch) as info:
        ensure_topics(stack.bootstrap, topics)  # creates the other two, then refuses
    message = str(info.value)
    assert f"topic {topics.requests!r} has 4 partitions, settings say 6" in message
    assert f"topic {topics.requests!r} has min.insync.replicas 2, settings say 1" in message
    assert len(info.value.problems) == 2  # the DLQ and alert topics are fine

    wanting_three = topics.model_copy(update={"replication_factor": 3, "partitions": 4})
    with pytest.raises(TopicMismatch) as info:
        check_topics(settings_for(stack, wanting_three))
    assert f"topic {topics.alerts!r} has replication factor 1, settings say 3" in str(info.value)

    impossible = topics.model_copy(update={"min_insync_replicas": 2, "partitions": 4})
    with pytest.raises(TopicMismatch, match="min_insync_replicas 2 above replication_factor 1"):
        check_topics(settings_for(stack, impossible))


def test_an_unreported_min_isr_is_logged_not_guessed(
    stack: EmbeddedStack, admin: KafkaAdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Tansu describes only configs set at creation: a topic made without one passes."""
    topics = private_topics(partitions=2)
    admin.create_topics(
        [
            NewTopic(name, 2 if name == topics.requests else 1, 1)
            for name in (topics.requests, topics.dead_letter, topics.alerts)
        ]
    )
    with caplog.at_level(logging.WARNING, logger="distillguard.topics"):
        check_topics(settings_for(stack, topics))
    unreported = [r for r in caplog.records if "reports no min.insync.replicas" in r.message]
    named = {getattr(r, "topic", None) for r in unreported}
    assert named == {topics.requests, topics.dead_letter, topics.alerts}


class _Recorder(ConsumerRebalanceListener):
    """Calls offsets_beyond_end where the worker will: in on_partitions_assigned."""

    def __init__(self, topic: str, stored: dict[int, int]) -> None:
        self.topic, self.stored = topic, stored
        self.bootstrap = ""
        self.found: dict[int, tuple[int, int]] | None = None

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        mine = {tp.partition for tp in assigned}
        stored = {p: o for p, o in self.stored.items() if p in mine}
        self.found = offsets_beyond_end(self.bootstrap, self.topic, stored)


def test_the_consumer_does_not_create_a_missing_topic(
    stack: EmbeddedStack, admin: KafkaAdminClient
) -> None:
    topics = private_topics()
    recorder = _Recorder(topics.requests, {})
    consumer = open_consumer(settings_for(stack, topics), recorder)
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close(autocommit=False)
    assert topics.requests not in admin.list_topics()


def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for partition, n in counts.items():
        for i in range(n):
            producer.send(topic, value=f"{partition}-{i}".encode(), partition=partition)
    producer.flush()
    producer.close()


def test_offsets_beyond_end_detect_a_re_created_topic(
    stack: EmbeddedStack, admin: KafkaAdminClient
) -> None:
    topics = private_topics(partitions=2)
    ensure_topics(stack.bootstrap, topics)
    _produce(stack.bootstrap, topics.requests, {0: 5, 1: 3})
    # What a checkpoint of the live topic holds is plausible, caught up or not (Tansu
    # reports end offset 1 for both partitions here: one batch each).
    assert offsets_beyond_end(stack.bootstrap, topics.requests, {0: 5, 1: 2}) == {}
    assert offsets_beyond_end(stack.bootstrap, topics.requests, {0: 7, 9: 1}) == {
        0: (7, 5),
        9: (1, -1),
    }

    old_id = topic_ids(stack.bootstrap, [topics.requests])[topics.requests]
    admin.delete_topics([topics.requests])
    deadline = time.monotonic() + 10
    while topics.requests in admin.list_topics() and time.monotonic() < deadline:
        time.sleep(0.1)
    ensure_topics(stack.bootstrap, topics)
    _produce(stack.bootstrap, topics.requests, {0: 2})
    assert topic_ids(stack.bootstrap, [topics.requests, "no-such-topic"]).keys() == {
        topics.requests
    }
    assert topic_ids(stack.bootstrap, [topics.requests])[topics.requests] != old_id

    stored = {0: 5, 1: 3}  # the checkpoint written before the topic was re-created
    recorder = _Recorder(topics.requests, stored)
    recorder.bootstrap = stack.bootstrap
    consumer = open_consumer(settings_for(stack, topics), recorder)
    try:
        deadline = time.monotonic() + 30
        while recorder.found is None and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close(autocommit=False)
    assert recorder.found == {0: (5, 2), 1: (3, 0)}
