"""The request-topic consumer, configured for batches and a fast group join."""

from __future__ import annotations

import time
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.net.compat import KafkaNetClient

from distillguard.settings import Settings
from distillguard.stream.group_join import apply_joins_finished_between_polls

__all__ = [
    "ConsumerRebalanceListener",
    "TopicPartition",
    "offsets_beyond_end",
    "open_consumer",
]


def _client_without_auto_create(**configs: Any) -> KafkaNetClient:
    """kafka-python's network client, with ``allow_auto_create_topics`` really applied.

    kafka-python 3.0.12 builds its cluster metadata without passing that option on, so
    every metadata request asks the broker to create missing topics whatever the
    consumer was told (measured against Tansu: a subscription to a missing topic
    created it with the broker's default of 4 partitions). Handed to the consumer as
    its ``kafka_client`` factory, this sets the flag where the requests read it.
    """
    client = KafkaNetClient(**configs)
    client.cluster.config["allow_auto_create_topics"] = configs.get(
        "allow_auto_create_topics", True
    )
    return client


def open_consumer(settings: Settings, listener: ConsumerRebalanceListener) -> KafkaConsumer:
    """A group consumer on the request topic; offsets are committed by the worker only.

    ``session_timeout_ms``/``heartbeat_interval_ms`` come from settings: with Tansu the
    second JoinGroup of a new group is held for about half the session timeout, so
    kafka-python's 45 s default delayed the first record by ~23 s.

    Topics are never auto-created: a request topic made by a consumer's metadata
    request gets the broker's default partition count, not ``topics.partitions``
    (``stream.admin.check_topics`` refuses a topic that is missing or different).
    """
    w = settings.worker
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=w.group_id,
        # No static membership (KIP-345, ``group_instance_id``): with it, on Tansu a
        # follower's first heartbeat after every join was refused ("member_id was not
        # recognized"), so two workers started together rejoined in a loop (8 of 8 runs
        # of the two-workers test, 4-12 rebalances each, once nothing processed for 120 s);
        # on Apache Kafka a member once kept an empty assignment while the other held
        # every partition. Without it: 16 of 16 runs, 2-3 assignments each. A restarted
        # worker now waits out its old session (``session_timeout_ms``, 6 s).
        client_id=w.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=w.batch_max_records,
        session_timeout_ms=w.session_timeout_ms,
        heartbeat_interval_ms=w.heartbeat_interval_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        allow_auto_create_topics=False,
        kafka_client=_client_without_auto_create,
    )
    apply_joins_finished_between_polls(consumer)
    consumer.subscribe([settings.topics.requests], listener=listener)
    return consumer


def offsets_beyond_end(
    bootstrap: str, topic: str, stored: dict[int, int], verify_timeout_s: float = 3.0
) -> dict[int, tuple[int, int]]:
    """Stored offsets the topic cannot have produced: ``{partition: (stored, end)}``.

    A stored (checkpointed) next offset above the partition's current end offset means
    the topic was deleted and re-created (or truncated) since the checkpoint. Seeking
    there skips silently: Kafka resets to ``auto_offset_reset`` with state that belongs
    to the old topic; Tansu answers such a fetch with nothing until the new topic grows
    past the stored offset, then serves from there, the records before it never read.
    A partition the topic no longer has is reported with ``end == -1``. Empty when every
    stored offset is plausible (equal to the end is fine: caught up).

    The end offset Tansu 0.6 reports is the last *batch's* base offset + 1 (after one
    batch of 5 records: 1, not 5), so an offset above it is checked by reading the
    partition's tail back: only a stored offset with no record just before it counts,
    and ``end`` is then one past the last record read (at most ``verify_timeout_s``).

    It uses a short-lived consumer of its own (no group), so it may be called from a
    rebalance listener: kafka-python 3.0 refuses blocking calls such as
    ``end_offsets`` on the consumer whose IO thread runs the listener.
    """
    if not stored:
        return {}
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest",  # if even end - 1 is gone: nothing, not the start
        allow_auto_create_topics=False,
        kafka_client=_client_without_auto_create,
    )
    try:
        known = reader.partitions_for_topic(topic) or set()
        out = {p: (offset, -1) for p, offset in stored.items() if p not in known}
        present = [TopicPartition(topic, p) for p in stored if p in known]
        ends = reader.end_offsets(present) if present else {}
        suspect = {tp: end for tp, end in ends.items() if stored[tp.partition] > end}
        if suspect:
            wanted = {tp: stored[tp.partition] for tp in suspect}
            tails = _read_tails(reader, suspect, wanted, verify_timeout_s)
            out |= {
                tp.partition: (wanted[tp], end) for tp, end in tails.items() if wanted[tp] > end
            }
    finally:
        reader.close(autocommit=False)
    return dict(sorted(out.items()))


def _read_tails(
    reader: KafkaConsumer,
    ends: dict[TopicPartition, int],
    wanted: dict[TopicPartition, int],
    timeout_s: float,
) -> dict[TopicPartition, int]:
    """One past the last record of each partition, read from its reported end - 1.

    Reading a partition stops once it reaches ``wanted`` (the stored offset is then
    plausible) or when the partitions have had nothing more to give for a few polls.
    """
    ends = dict(ends)
    open_ = set(ends)
    reader.assign(list(ends))
    for tp, end in ends.items():
        reader.seek(tp, max(end - 1, 0))
    deadline = time.monotonic() + timeout_s
    idle = 0
    while open_ and idle < 3 and time.monotonic() < deadline:
        batch = reader.poll(timeout_ms=100)
        idle = 0 if batch else idle + 1
        for tp, records in batch.items():
            ends[tp] = max(ends[tp], records[-1].offset + 1)
            if ends[tp] >= wanted[tp] and tp in open_:
                open_.discard(tp)
                reader.pause(tp)
    return ends
