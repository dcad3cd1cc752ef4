"""The streaming worker: Kafka batches in, detector pipeline, Redis checkpoint, commit.

Per batch: decode and validate every message (bad ones to the dead-letter topic),
drop duplicates by ``event_id``, feed the rest to the pipeline in partition order,
then persist (``Checkpointer.commit``: one Redis transaction), then commit offsets to
Kafka. Effects are therefore applied exactly once in Redis although delivery is
at-least-once (see ``checkpoint`` for the argument). The worker never stops on
input; it stops on SIGTERM/SIGINT after finishing, persisting and committing the
batch in hand.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from distillguard.detectors.pipeline import Checkpointable, Pipeline, PipelineOutput
from distillguard.stream.checkpoint import STATS_KEY, BatchResult, Checkpointer
from distillguard.stream.consumer import ConsumerRebalanceListener, TopicPartition, open_consumer
from distillguard.stream.dead_letter import DeadLetters
from distillguard.stream.dedup import DedupWindow
from distillguard.stream.producer import EventPublisher
from kafka import KafkaConsumer, OffsetAndMetadata
from kafka.errors import KafkaError

from distillguard.events import EventDecoder, InvalidEvent, Limits
from distillguard.records import Alert, dumps
from distillguard.settings import Settings
from distillguard.store.feedback import read_labels

log = logging.getLogger("distillguard.worker")

#: Persists what the pipeline produced beyond counts (risks, alerts, clusters) and
#: returns the alerts that were created or updated, to be published on Kafka.
OutputSink = Callable[[PipelineOutput], list[Alert]]


@dataclass(slots=True)
class WorkerStats:
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Every batch is checkpointed before the next poll, so nothing is in flight here.
        for tp in revoked:
            self.worker.windows.pop(tp.partition, None)
        self.worker.forget(revoked)
        if revoked:
            log.info(
                "partitions revoked", extra={"partitions": sorted(t.partition for t in revoked)}
            )

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.worker.restore(assigned)


class Worker:
    """One consumer-group member. ``run()`` blocks until ``stop()`` or a signal."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        *,
        sink: OutputSink | None = None,
        redis_client: redis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.sink = sink
        v = settings.validation
        self.decoder = EventDecoder(
            Limits(v.max_prompt_chars, v.max_message_bytes, v.max_tokens, v.max_clock_skew_days)
        )
        self.redis = redis_client or redis.Redis.from_url(settings.redis_url)
        self.checkpointer = Checkpointer(
            self.redis,
            settings.worker.group_id,
            settings.topics.requests,
            settings.worker.dedup_window,
        )
        self.publisher = EventPublisher(settings.kafka_bootstrap, settings.topics.alerts)
        self.dead_letters = DeadLetters(self.publisher, settings.topics.dead_letter)
        self.windows: dict[int, DedupWindow] = {}
        # Pipelines with per-account state checkpoint it per partition, so that a
        # rebalance moves an account's state with its partition.
        self.checkpointable = isinstance(pipeline, Checkpointable)
        # Which accounts each partition has fed, to forget them when it is revoked.
        self.partition_accounts: dict[int, set[str]] = {}
        self._last_shared_checkpoint = time.monotonic()
        self.stats = WorkerStats()
        self.feedback_position = "0-0"
        self._last_feedback_poll = 0.0
        self._stop = threading.Event()
        self._closing = False
        self._consumer: KafkaConsumer | None = None

    # -- lifecycle ---------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def restore(self, assigned: list[TopicPartition]) -> None:
        """Seek to the offsets in Redis; reload each partition's de-dup window and account state."""
        consumer = self._consumer
        assert consumer is not None
        offsets = self.checkpointer.load_offsets([tp.partition for tp in assigned])
        size = self.settings.worker.dedup_window
        for tp in assigned:
            if tp.partition in offsets:
                consumer.seek(tp, offsets[tp.partition])
            self.windows[tp.partition] = DedupWindow(
                size, self.checkpointer.load_seen(tp.partition)
            )
            if self.checkpointable:
                states = self.checkpointer.load_account_states(tp.partition)
                if states:
                    self.pipeline.restore_accounts(states)  # type: ignore[attr-defined]
        log.info(
            "partitions assigned",
            extra={"partitions": sorted(t.partition for t in assigned), "restored": offsets},
        )

    def forget(self, revoked: list[TopicPartition]) -> None:
        """Drop the state of accounts whose partition moved: its new owner restores it.

        Not on shutdown (the consumer revokes everything as it closes): the state is
        checkpointed by then and stays inspectable in this process.
        """
        if self._closing:
            return
        forget = getattr(self.pipeline, "forget_accounts", None)
        for tp in revoked:
            accounts = self.partition_accounts.pop(tp.partition, None)
            if accounts and forget is not None:
                forget(list(accounts))

    def restore_shared(self) -> None:
        """Load the last shared-model checkpoint and resume the feedback stream after it."""
        if not self.checkpointable:
            return
        shared, position = self.checkpointer.load_shared()
        if shared is not None:
            try:
                self.pipeline.restore(shared)  # type: ignore[attr-defined]
            except ValueError as exc:
                # An unreadable checkpoint (older format, corruption) costs history, not service.
                log.error("shared checkpoint unreadable; starting fresh", extra={"error": str(exc)})
        if position is not None:
            self.feedback_position = position
        log.info("shared state restored", extra={"found": shared is not None})

    def run(self, max_idle_s: float | None = None) -> WorkerStats:
        """Consume until stopped (or, for tools and tests, until idle for ``max_idle_s``)."""
        self.restore_shared()
        self._consumer = consumer = open_consumer(self.settings, _Rebalance(self))
        timeout_ms = self.settings.worker.poll_timeout_ms
        idle_since = time.monotonic()
        last_report = time.monotonic()
        log.info("worker started", extra={"group": self.settings.worker.group_id})
        try:
            while not self._stop.is_set():
                self.learn_feedback()
                records = consumer.poll(timeout_ms=timeout_ms)
                if records:
                    self.handle(records)
                    idle_since = time.monotonic()
                elif not consumer.assignment():
                    idle_since = time.monotonic()  # still joining the group: not idle yet
                elif max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                    break
                if time.monotonic() - last_report > self.settings.worker.stats_interval_s:
                    self.report(consumer)
                    last_report = time.monotonic()
        finally:
            if self.checkpointable:
                self._persist(
                    BatchResult(
                        shared_state=self._shared_snapshot(),
                        feedback_position=self.feedback_position,
                    ),
                    PipelineOutput(),
                )
            self.report(consumer)
            self._closing = True
            consumer.close(autocommit=False)
            self.publisher.close()
            log.info("worker stopped", extra=self._stats_dict())
        return self.stats

    # -- one batch ---------------------------------------------------------------
    def handle(self, records: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        batch = BatchResult()
        decode = self.decoder.decode
        process = self.pipeline.process
        touched: dict[int, set[str]] = {}
        for tp, messages in records.items():
            window = self.windows.get(tp.partition)
            if window is None:
                window = self.windows[tp.partition] = DedupWindow(self.settings.worker.dedup_window)
            new_ids: list[str] = []
            accounts = touched[tp.partition] = set()
            for msg in messages:
                try:
                    event = decode(msg.value)
                except InvalidEvent as exc:
                    self.dead_letters.send(
                        msg.key, msg.value, exc.reason, tp.topic, tp.partition, msg.offset
                    )
                    batch.rejected += 1
                    continue
                if not window.add(event.event_id):
                    batch.duplicates += 1
                    continue
                try:
                    process(event)  # alerts also come out of drain()
                except Exception as exc:  # a detector bug must not stop the stream
                    log.exception("detector failed on event", extra={"event_id": event.event_id})
                    self.dead_letters.send(
                        msg.key,
                        msg.value,
                        f"detector error: {type(exc).__name__}: {exc}",
                        tp.topic,
                        tp.partition,
                        msg.offset,
                    )
                    batch.rejected += 1
                    continue
                new_ids.append(event.event_id)
                accounts.add(event.account_id)
                batch.processed += 1
            batch.new_ids[tp.partition] = new_ids
            batch.next_offsets[tp.partition] = messages[-1].offset + 1
        out = self.pipeline.drain()
        batch.counts = out.counts
        if self.checkpointable:
            for p, ids in touched.items():
                self.partition_accounts.setdefault(p, set()).update(ids)
            snap = self.pipeline.snapshot_accounts  # type: ignore[attr-defined]
            batch.account_states = {p: snap(list(ids)) for p, ids in touched.items() if ids}
            interval = self.settings.worker.shared_checkpoint_interval_s
            if time.monotonic() - self._last_shared_checkpoint > interval:
                batch.shared_state = self._shared_snapshot()
                batch.feedback_position = self.feedback_position
        # Dead letters first: a crash after this and before the checkpoint re-sends
        # them (at-least-once), but never loses one.
        self.dead_letters.flush()
        self._persist(batch, out)
        self._commit_kafka(batch)
        s = self.stats
        s.processed += batch.processed
        s.rejected += batch.rejected
        s.duplicates += batch.duplicates
        s.batches += 1

    def learn_feedback(self, min_interval_s: float = 1.0) -> int:
        """Teach the pipeline the analysts' labels that arrived since the last poll."""
        now = time.monotonic()
        if now - self._last_feedback_poll < min_interval_s:
            return 0
        self._last_feedback_poll = now
        try:
            labels, self.feedback_position = read_labels(self.redis, self.feedback_position)
        except redis.exceptions.RedisError as exc:
            log.warning("feedback stream unavailable", extra={"error": str(exc)})
            return 0
        for label in labels:
            try:
                self.pipeline.learn_label(label)
            except Exception:  # a bad label must not stop the stream
                log.exception(
                    "pipeline failed to learn a label", extra={"account": label.account_id}
                )
        if labels:
            log.info("learnt analyst labels", extra={"labels": len(labels)})
        return len(labels)

    def _shared_snapshot(self) -> bytes:
        self._last_shared_checkpoint = time.monotonic()
        return self.pipeline.snapshot_shared()  # type: ignore[attr-defined, no-any-return]

    def _persist(self, batch: BatchResult, out: PipelineOutput) -> None:
        """Checkpoint, retrying while Redis is unreachable: no offset moves before state."""
        delay = 0.1
        while True:
            try:
                if self.sink is not None and (out.risks or out.alerts or out.clusters):
                    for alert in self.sink(out):
                        self.publisher.send(alert.subject_id, dumps(alert))
                self.checkpointer.commit(batch)
                return
            except redis.exceptions.ConnectionError as exc:
                log.warning("redis unavailable, retrying checkpoint", extra={"error": str(exc)})
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _commit_kafka(self, batch: BatchResult) -> None:
        consumer = self._consumer
        assert consumer is not None
        topic = self.settings.topics.requests
        offsets = {
            TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in batch.next_offsets.items()
        }
        try:
            consumer.commit(offsets)
        except KafkaError as exc:
            # Redis holds the authoritative offsets; a failed Kafka commit only delays lag
            # reporting, so it is logged, not fatal.
            log.warning("kafka offset commit failed", extra={"error": str(exc)})

    # -- observability -------------------------------------------------------------
    def _stats_dict(self) -> dict[str, int]:
        s = self.stats
        return {
            "processed": s.processed,
            "rejected": s.rejected,
            "duplicates": s.duplicates,
            "batches": s.batches,
        }

    def report(self, consumer: KafkaConsumer) -> None:
        """Log counters and publish consumer lag where the API's /metrics can read it."""
        lag = None
        try:
            assignment = list(consumer.assignment())
            if assignment:
                ends = consumer.end_offsets(assignment)
                lag = sum(max(0, ends[tp] - (consumer.position(tp) or 0)) for tp in assignment)
                self.redis.hset(
                    STATS_KEY, mapping={"lag": lag, "lag_updated_at": round(time.time(), 3)}
                )
        except (KafkaError, redis.exceptions.RedisError, AssertionError) as exc:
            log.debug("lag unavailable", extra={"error": str(exc)})
        log.info("worker stats", extra={**self._stats_dict(), "lag": lag})
