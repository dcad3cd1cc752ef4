"""The group consumer ends every rebalance it starts, however short the worker's polls.

Against both stacks (Tansu and Apache Kafka), through ``open_consumer`` as the worker
opens it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kafka import KafkaConsumer

from distillguard.infra import EmbeddedStack
from distillguard.settings import Settings, Topics, Worker
from distillguard.stream.admin import ensure_topics
from distillguard.stream.consumer import ConsumerRebalanceListener, open_consumer


class _Assignments(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.history: list[list[int]] = []

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.history.append(sorted(tp.partition for tp in assigned))


def _poll_briefly(consumer: KafkaConsumer, seconds: float) -> None:
    """Polls as a busy worker makes them: a short wait, then work between polls.

    A rebalance's round trips then mostly complete while nobody is polling, which is
    what left a group leader stuck (kafka-python 3.0.12: a join finished outside a poll
    was never applied when a metadata change, not the broker, had asked for it).
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=1)
        time.sleep(0.02)


def _private(stack: EmbeddedStack) -> tuple[Topics, Settings]:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"cg-{tag}", dead_letter=f"cg-{tag}.dlq", alerts=f"cg-{tag}.al", partitions=6
    )
    settings = Settings(
        kafka_bootstrap=stack.bootstrap, topics=topics, worker=Worker(group_id=f"g-cg-{tag}")
    )
    return topics, settings


def _owned_after_polling(consumer: KafkaConsumer, seconds: float) -> list[int]:
    """The partitions owned once all six are, or when ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(consumer.assignment()) < 6:
        _poll_briefly(consumer, 0.5)
    return sorted(tp.partition for tp in consumer.assignment())


def test_a_join_that_finishes_between_polls_is_applied(stack: EmbeddedStack) -> None:
    """Short polls with work between them: the join completes while nobody polls.

    kafka-python 3.0.12 alone then sends a new JoinGroup instead of applying the one
    that finished; on Tansu (JoinGroup held ~3 s) it never got an assignment in 30 s.
    """
    topics, settings = _private(stack)
    ensure_topics(stack.bootstrap, topics)
    listener = _Assignments()
    consumer = open_consumer(settings, listener)
    try:
        owned = _owned_after_polling(consumer, 30)
    finally:
        consumer.close(autocommit=False)
    assert owned == list(range(6)), f"assignments seen: {listener.history}"


def test_a_topic_created_after_the_group_formed_is_assigned(stack: EmbeddedStack) -> None:
    """The single member joins before its topic exists (an empty assignment); the topic's
    creation changes the metadata, the leader rebalances, and must end up owning every
    partition, not keep the empty assignment with its heartbeat switched off.

    This is what a fresh worker on Apache Kafka met: its first metadata did not yet
    hold the topic (kafka-python's bootstrap asks for no topics), so the first
    assignment was empty and the rebalance that followed was never applied.
    """
    topics, settings = _private(stack)
    listener = _Assignments()
    consumer = open_consumer(settings, listener)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not listener.history:
            _poll_briefly(consumer, 0.5)
        assert listener.history, "the first join never completed"
        assert all(owned == [] for owned in listener.history), listener.history
        ensure_topics(stack.bootstrap, topics)
        owned = _owned_after_polling(consumer, 45)
    finally:
        consumer.close(autocommit=False)
    assert owned == list(range(6)), f"assignments seen: {listener.history}"
