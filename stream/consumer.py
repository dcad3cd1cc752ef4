"""The request-topic consumer, configured for batches and a fast group join."""

from __future__ import annotations

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from distillguard.settings import Settings

__all__ = ["ConsumerRebalanceListener", "TopicPartition", "open_consumer"]


def open_consumer(settings: Settings, listener: ConsumerRebalanceListener) -> KafkaConsumer:
    """A group consumer on the request topic; offsets are committed by the worker only.

    ``session_timeout_ms``/``heartbeat_interval_ms`` come from settings: with Tansu the
    second JoinGroup of a new group is held for about half the session timeout, so
    kafka-python's 45 s default delayed the first record by ~23 s.
    """
    w = settings.worker
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=w.group_id,
        client_id=w.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=w.batch_max_records,
        session_timeout_ms=w.session_timeout_ms,
        heartbeat_interval_ms=w.heartbeat_interval_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    consumer.subscribe([settings.topics.requests], listener=listener)
    return consumer
