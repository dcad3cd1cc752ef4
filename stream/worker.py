"""The streaming worker: partitions merged in event time, one pipeline, one commit.

Per poll: decode every fetched message into its partition's buffer (a refused one
keeps its place, with the reason), then hand events to the pipeline in merged
event-time order (:mod:`distillguard.stream.merge`), dropping duplicates and events
far outside the watermark. Every ``checkpoint_interval_s`` (or
``checkpoint_max_events``) one checkpoint commits everything since the last one:
dead letters and published alerts confirmed by Kafka first, then one Redis
transaction with the store's writes, all state and the offsets it covers
(:mod:`distillguard.stream.checkpoint`), then the Kafka offsets (for lag tools only).

Processing order depends on the topic alone, and the state in Redis always matches
the offsets in Redis, so whatever happens — a crash, a restart, a rebalance — the
worker rolls back to its last checkpoint and re-reads from there: the same events in
the same order from the same state, the same results. That roll-back is the one
path for start-up, every change of assignment and recovery; it runs on the main
thread (the rebalance callbacks, on kafka-python's network thread, only raise a flag).

The worker never stops on input. It stops on SIGTERM/SIGINT after checkpointing what
it processed; it exits non-zero, with a message, when it cannot go on safely (a
checkpoint ahead of the topic's end, Redis or Kafka unreachable past
``outage_exit_s``, or a stop requested while the checkpoint cannot be written).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any

import redis
from kafka import KafkaConsumer, OffsetAndMetadata
from kafka.errors import KafkaError, OffsetOutOfRangeError

from distillguard.detectors.linkage.handoff import HandoffEvent
from distillguard.detectors.pipeline import BatchOutput, Pipeline
from distillguard.events import EventDecoder, InvalidEvent, Limits
from distillguard.records import Alert, dumps
from distillguard.settings import Settings
from distillguard.store import schema
from distillguard.store.feedback import read_labels
from distillguard.store.stats import prune_worker_lags
from distillguard.stream.admin import TopicMismatch, check_topics, topic_ids
from distillguard.stream.checkpoint import STATS_KEY, Batch, Checkpointer, SharedCheckpoint
from distillguard.stream.consumer import (
    ConsumerRebalanceListener,
    TopicPartition,
    offsets_beyond_end,
    open_consumer,
)
from distillguard.stream.dead_letter import DeadLetters
from distillguard.stream.dedup import DedupWindow, dedup_key
from distillguard.stream.handoff import HandoffReader, Inner, send_batches
from distillguard.stream.merge import Entry, PartitionMerge
from distillguard.stream.producer import EventPublisher, PublishFailed
from distillguard.stream.sinks import OutputSink

log = logging.getLogger("distillguard.worker")

#: events handed to the pipeline between two looks at the clock and the signals
_RUN = 2048
#: polls without records for a partition before it may count as caught up
_QUIET_POLLS = 2
#: how often the worker asks whether the request topic is still the one it checkpointed
_IDENTITY_CHECK_S = 15.0
_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, PublishFailed)


class _Backoff:
    """Growing pauses (0.1 s, doubling to 2 s) while an outage is waited out."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.delay = 0.1

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started

    def sleep(self) -> None:
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, 2.0)


def stage_settings(settings: Settings) -> Settings:
    """The settings one stage runs on: the cluster stage reads the hand-off topic as its
    request topic, in a consumer group of its own (its checkpoint keys follow both)."""
    if settings.worker.stage != "cluster":
        return settings
    topics = settings.topics.model_copy(update={"requests": settings.topics.linkage_topic})
    worker = settings.worker.model_copy(update={"group_id": f"{settings.worker.group_id}-cluster"})
    return settings.model_copy(update={"topics": topics, "worker": worker})


class WorkerError(RuntimeError):
    """The worker cannot go on safely; the message says why and what to do."""


@dataclass(slots=True)
class WorkerStats:
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    checkpoints: int = 0
    rollbacks: int = 0


class _Rebalance(ConsumerRebalanceListener):
    """Runs on kafka-python's network thread: only note that the assignment moved."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.worker.rebalanced = True

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker.rebalanced = True


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
        #: the settings as given (topics checked at start); ``self.settings`` is what this
        #: stage reads: the cluster stage consumes the hand-off topic as its input
        self.given_settings = settings
        self.stage = settings.worker.stage
        settings = stage_settings(settings)
        self.settings = settings
        self.pipeline = pipeline
        self.sink = sink
        self.decoder = EventDecoder(Limits.from_settings(settings.validation))
        #: the cluster stage's end of the hand-off topic (None in other stages)
        self.handoff = HandoffReader() if self.stage == "cluster" else None
        #: the account stage's hand-off topic (None in other stages)
        self.handoff_topic = settings.topics.linkage_topic if self.stage == "account" else None
        # A hung connection must not hang the worker: every Redis call returns or raises.
        self.redis = redis_client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=4, socket_connect_timeout=2
        )
        w = settings.worker
        #: this stage's counters (processed, lag): the cluster stage's are its own
        self.stats_key = schema.CLUSTER_STAGE_STATS if self.stage == "cluster" else STATS_KEY
        #: this worker in ``dg:worker:lag``: its stage and instance (host and pid if unnamed)
        self.worker_name = f"{self.stage}:{w.instance or f'{socket.gethostname()}-{os.getpid()}'}"
        self.checkpointer = Checkpointer(
            self.redis,
            w.group_id,
            settings.topics.requests,
            w.dedup_window,
            w.instance,
            self.stats_key,
        )
        self.publisher = EventPublisher.for_settings(settings, settings.topics.alerts)
        self.dead_letters = DeadLetters(self.publisher, settings.topics.dead_letter)
        #: the state a rollback returns to when there is no checkpoint yet
        self._initial_shared = pipeline.snapshot_shared()
        self.merge = PartitionMerge()
        self.windows: dict[int, DedupWindow] = {}
        self.stats = WorkerStats()
        self.feedback_position = "0-0"
        self.rebalanced = True  # the first poll joins the group: start from the checkpoint
        self._assigned: set[TopicPartition] = set()
        self._offsets: dict[int, int] = {}  # next offset to process, per owned partition
        self._partition_of: dict[str, int] = {}
        self._topic_id = ""
        self._quiet_polls: dict[int, int] = {}
        self._reset_batch()
        self._last_feedback_poll = 0.0
        self._stop = False
        self._consumer: KafkaConsumer | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self._stop = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, max_idle_s: float | None = None) -> WorkerStats:
        """Consume until stopped (or, for tools and tests, until idle for ``max_idle_s``)."""
        w = self.settings.worker
        try:
            check_topics(self.given_settings)
        except TopicMismatch as exc:
            raise WorkerError(f"{exc} (create or fix them with `distillguard topics`)") from None
        self._consumer = consumer = open_consumer(self.settings, _Rebalance(self))
        idle_since = last_report = last_identity = time.monotonic()
        log.info("worker started", extra={"group": w.group_id, "instance": w.instance})
        clean = False
        try:
            while not self._stop:
                records = self._poll(consumer)
                if self.rebalanced or consumer.assignment() != self._assigned:
                    self._roll_back(consumer)
                    idle_since = time.monotonic()
                    continue
                if records:
                    self._buffer(records)
                    idle_since = time.monotonic()
                self._mark_caught_up(records)
                self._apply_backpressure(consumer)
                self._process_merged()
                self._learn_feedback()
                now = time.monotonic()
                if self._checkpoint_due(now):
                    self._checkpoint()
                if now - last_report > w.stats_interval_s:
                    self.report(consumer)
                    last_report = now
                if now - last_identity > _IDENTITY_CHECK_S:
                    self._check_topic_identity()
                    last_identity = now
                if (
                    max_idle_s is not None
                    and self._assigned
                    and not len(self.merge)
                    and now - idle_since > max_idle_s
                    and not (self.stage == "cluster" and self._source_behind(self._owned()))
                ):
                    break
            clean = True
        finally:
            # A loop that ended by itself (stop, idle) checkpoints what it processed; one
            # that raised leaves Redis at the last checkpoint, which the next start reads.
            error = self._final_checkpoint() if clean else None
            if clean and error is None:
                self.report(consumer)
            consumer.close(autocommit=False)
            self.publisher.close()
            log.info("worker stopped", extra=self._stats_dict())
        if error is not None:
            raise error
        return self.stats

    def _poll(self, consumer: KafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """One poll; a broker that cannot be reached is waited out, not fatal.

        kafka-python 3.0.12 lets a connection error escape ``poll()`` when the broker it
        asks for the group coordinator (and then for metadata) has just died: seen on the
        three-node cluster, a worker started as a broker was SIGKILLed exited at once.
        Nothing was read, so nothing is lost by polling again; an outage longer than
        ``worker.outage_exit_s`` still ends the worker (a restart resumes from the
        checkpoint), as for Redis.
        """
        w = self.settings.worker
        pauses = _Backoff()
        while True:
            try:
                return consumer.poll(timeout_ms=w.poll_timeout_ms)
            except OffsetOutOfRangeError as exc:
                raise WorkerError(
                    f"the request topic no longer holds the offsets being read ({exc}):"
                    " it was deleted and re-created, or truncated; the checkpoint does not"
                    " describe this topic — reset it (`distillguard checkpoint reset`)"
                ) from None
            except KafkaError as exc:
                if self._stop and exc.retriable:
                    return {}  # stopping: the loop ends and checkpoints what it processed
                if not exc.retriable or pauses.waited > w.outage_exit_s:
                    raise WorkerError(
                        f"polling the request topic failed ({type(exc).__name__}: {exc});"
                        " the next start resumes from the last checkpoint"
                    ) from None
                log.warning(
                    "poll failed, retrying", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
                pauses.sleep()

    def _final_checkpoint(self) -> WorkerError | None:
        if not self._assigned:
            return None
        try:
            self._checkpoint()
        except WorkerError as exc:
            # nothing is lost: the next start re-reads from the last checkpoint
            log.error("final checkpoint abandoned", extra={"error": str(exc)})
            return exc
        return None

    # -- roll back to the checkpoint (start-up, rebalance, recovery) -------------------
    def _roll_back(self, consumer: KafkaConsumer) -> None:
        """Discard everything since the last checkpoint and resume from it."""
        self.rebalanced = False
        assigned = set(consumer.assignment())
        partitions = sorted(tp.partition for tp in assigned)
        self._retry(lambda: self._restore(consumer, assigned, partitions), "restore")
        self._assigned = assigned
        self.stats.rollbacks += 1
        log.info(
            "partitions assigned, resumed from checkpoint",
            extra={
                "partitions": partitions,
                "offsets": {str(p): o for p, o in self._offsets.items()},
            },
        )

    def _restore(
        self, consumer: KafkaConsumer, assigned: set[TopicPartition], partitions: list[int]
    ) -> None:
        pipeline, cp = self.pipeline, self.checkpointer
        pipeline.drain()  # outputs since the checkpoint: produced again from the re-read
        pipeline.forget(pipeline.accounts())
        try:
            shared = cp.load_shared()
        except ValueError as exc:
            log.error("shared checkpoint unreadable; starting fresh", extra={"error": str(exc)})
            shared = None
        try:
            pipeline.restore(shared.state if shared is not None else self._initial_shared)
        except ValueError as exc:
            log.error("shared state not restorable; starting fresh", extra={"error": str(exc)})
            pipeline.restore(self._initial_shared)
        self.feedback_position = shared.feedback_position if shared is not None else "0-0"
        if self.handoff is not None:
            self.handoff.restore(shared.sources if shared is not None else {})
        self._topic_id = self._current_topic_id() or ""
        if shared is not None and shared.topic_id and self._topic_id != shared.topic_id:
            raise WorkerError(
                f"the checkpoint was taken on another incarnation of topic"
                f" {self.settings.topics.requests!r} (id {shared.topic_id}, now"
                f" {self._topic_id or 'missing'}): it was deleted and re-created, or the broker"
                " lost its data; reset the checkpoint (`distillguard checkpoint reset`)"
            )
        stored = cp.load_offsets(partitions)
        beyond = offsets_beyond_end(
            self.settings.kafka_bootstrap, self.settings.topics.requests, stored
        )
        if beyond:
            described = ", ".join(
                f"partition {p} at {o} (ends at {e})" for p, (o, e) in beyond.items()
            )
            raise WorkerError(
                f"checkpoint ahead of the topic: {described}. The topic was re-created or"
                " truncated, and reading on would silently skip events; reset the"
                " checkpoint (`distillguard checkpoint reset`) to process it from its start"
            )
        tps = sorted(assigned, key=lambda tp: tp.partition)
        begin = consumer.beginning_offsets(tps) if tps else {}
        self._offsets = {}
        self._partition_of = {}
        self.windows = {}
        size = self.settings.worker.dedup_window
        for tp in tps:
            p = tp.partition
            offset = stored.get(p, begin[tp])
            if offset < begin[tp]:
                log.warning(
                    "events expired before they were processed",
                    extra={"partition": p, "checkpoint": offset, "log_start": begin[tp]},
                )
                offset = begin[tp]
            consumer.seek(tp, offset)
            self._offsets[p] = offset
            self.windows[p] = DedupWindow(size, cp.load_seen(p))
            states = cp.load_account_states(p)
            try:
                pipeline.restore_accounts(states)
            except ValueError as exc:
                # one unreadable partition costs its accounts' history, not the service
                log.error("account states unreadable", extra={"partition": p, "error": str(exc)})
                states = {}
            for account in states:
                self._partition_of[account] = p
        self.merge.assign(partitions)
        self._quiet_polls = {}
        self.dead_letters.discard()
        self._reset_batch()

    def _current_topic_id(self) -> str | None:
        """The request topic's id; None if the broker cannot say right now."""
        topic = self.settings.topics.requests
        try:
            return topic_ids(self.settings.kafka_bootstrap, [topic], timeout_s=5).get(topic, "")
        except KafkaError as exc:
            log.warning("topic id unavailable", extra={"error": str(exc)})
            return None

    def _check_topic_identity(self) -> None:
        """Stop, loudly, when the topic being read is no longer the one checkpointed.

        A broker that lost its data (Tansu keeps topics in memory) or a topic deleted and
        created again would otherwise be read on from offsets that mean nothing there,
        silently skipping whatever the new topic holds below them.
        """
        if not self._topic_id:
            return
        current = self._current_topic_id()
        if current is None:
            return  # broker unreachable: kafka-python reconnects; checked again later
        if current != self._topic_id:
            raise WorkerError(
                f"request topic {self.settings.topics.requests!r} changed under the worker"
                f" (id {self._topic_id} -> {current or 'missing'}): the broker lost its data"
                " or the topic was re-created; the last checkpoint stays as it was; reset it"
                " (`distillguard checkpoint reset`) to read the new topic"
            )

    # -- buffering and the merge ---------------------------------------------------------
    def _buffer(self, records: dict[TopicPartition, list[Any]]) -> None:
        if self.handoff is not None:
            for tp, messages in records.items():
                self.merge.extend(tp.partition, self.handoff.entries(tp.partition, messages))
            return
        decode = self.decoder.decode
        for tp, messages in records.items():
            entries = []
            for msg in messages:
                try:
                    event = decode(msg.value)
                except InvalidEvent as exc:
                    entries.append(Entry(msg.offset, None, (msg, exc.reason)))
                    continue
                entries.append(Entry(msg.offset, event.ts, (msg, event)))
            self.merge.extend(tp.partition, entries)

    def _mark_caught_up(self, records: dict[TopicPartition, list[Any]]) -> None:
        """A partition is caught up when its fetch position reached the end it reports
        and the last two polls brought nothing for it. (Tansu reports the last *batch's*
        base offset as its end, so the position alone could declare a partition done
        that still holds most of a batch.) The cluster stage's input is another stage's
        output: one of its partitions is caught up only once the account stage has
        forwarded everything its request partition holds (:meth:`_source_behind`), or a
        lagging account worker would let the merge run ahead of its records."""
        consumer = self._consumer
        assert consumer is not None
        quiet = self._quiet_polls
        caught_up: dict[int, bool] = {}
        for tp in self._assigned:
            p = tp.partition
            quiet[p] = 0 if records.get(tp) else quiet.get(p, 0) + 1
            high = consumer.highwater(tp)
            fetched = consumer.position(tp, timeout_ms=0) if high is not None else None
            caught_up[p] = fetched is not None and fetched >= high and quiet[p] >= _QUIET_POLLS
        if self.stage == "cluster" and any(caught_up.values()):
            behind = self._source_behind([p for p, done in caught_up.items() if done])
            for p in behind:
                caught_up[p] = False
        for p, done in caught_up.items():
            self.merge.set_caught_up(p, done)

    def _owned(self) -> list[int]:
        return sorted(tp.partition for tp in self._assigned)

    def _source_behind(self, partitions: list[int]) -> set[int]:
        """Of these hand-off partitions, those whose request partition holds events the
        account stage has not forwarded yet (all of them if the broker cannot say)."""
        consumer, reader = self._consumer, self.handoff
        assert consumer is not None and reader is not None
        topic = self.given_settings.topics.requests
        tps = [TopicPartition(topic, p) for p in partitions]
        try:
            ends = consumer.end_offsets(tps)
        except KafkaError as exc:
            log.debug("request topic ends unavailable", extra={"error": str(exc)})
            return set(partitions)
        return reader.behind({tp.partition: ends.get(tp, 0) for tp in tps})

    def _apply_backpressure(self, consumer: KafkaConsumer) -> None:
        """Bound the buffer: pause the partitions furthest ahead until the others catch up."""
        limit = self.settings.worker.merge_buffer_max
        paused = consumer.paused()
        if len(self.merge) > limit:
            by_p = {tp.partition: tp for tp in self._assigned}
            ahead = self.merge.largest(max(1, len(by_p) // 2))
            consumer.pause(*(by_p[p] for p in ahead if by_p[p] not in paused))
        elif paused and len(self.merge) < limit // 2:
            consumer.resume(*paused)

    def _process_merged(self) -> None:
        take = self.merge.take
        process = self.pipeline.process
        judge = self.pipeline.clock.judge
        windows, offsets = self.windows, self._offsets
        partition_of = self._partition_of
        topic = self.settings.topics.requests
        max_events = self.settings.worker.checkpoint_max_events
        while items := take(_RUN):
            batch, touched = self._batch, self._touched
            handoff = self._handoff_partitions if self.handoff_topic is not None else None
            done = self.handoff.done if self.handoff is not None else None
            next_offsets, new_ids = batch.next_offsets, batch.new_ids
            self._since_checkpoint += len(items)
            for p, entry in items:
                msg, payload = entry.payload
                offsets[p] = next_offsets[p] = entry.offset + 1
                if done is not None and isinstance(msg, Inner):
                    done[p] = msg.source  # handed out, processed or not: not again
                if isinstance(payload, str):
                    self._dead_letter(msg, payload, topic, p)
                    continue
                event = payload
                late = judge(event.ts)
                if late is not None:
                    self._dead_letter(msg, late, topic, p)
                    continue
                # the cluster stage reads what the account stage de-duplicated already
                # (its records drop the event id); its repeats go by request offset
                key = dedup_key(event) if done is None else ""
                if done is None and not windows[p].add(key):
                    batch.duplicates += 1
                    continue
                try:
                    process(event)
                except Exception as exc:  # a detector bug must not stop the stream
                    log.exception("detector failed on event", extra={"event_id": event.event_id})
                    reason = f"detector error: {type(exc).__name__}: {exc}"
                    self._dead_letter(msg, reason, topic, p)
                    continue
                if handoff is not None:
                    handoff.append((p, entry.offset))
                account = event.account_id
                ids = new_ids.get(p)
                if ids is None:
                    ids = new_ids[p] = []
                    touched[p] = set()
                if key:
                    ids.append(key)
                touched[p].add(account)
                partition_of[account] = p
                batch.processed += 1
            if self._since_checkpoint >= max_events:
                self._checkpoint()

    def _dead_letter(self, msg: Any, reason: str, topic: str, partition: int) -> None:
        self.dead_letters.send(msg.key, msg.value, reason, topic, partition, msg.offset)
        self._batch.rejected += 1

    # -- the commit ---------------------------------------------------------------------
    def _reset_batch(self) -> None:
        self._batch = Batch()
        #: (request partition, offset) of each event processed since the checkpoint, in
        #: order: where each of the account stage's hand-off records goes, and its source
        self._handoff_partitions: list[tuple[int, int]] = []
        self._touched: dict[int, set[str]] = {}
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()

    def _checkpoint_due(self, now: float) -> bool:
        if not self._since_checkpoint and not self._feedback_learnt:
            return False
        return now - self._last_checkpoint >= self.settings.worker.checkpoint_interval_s

    def _checkpoint(self) -> None:
        """Commit everything since the last checkpoint (see the module docstring)."""
        pipeline = self.pipeline
        out = pipeline.drain()
        batch = self._batch
        batch.counts = out.counts
        for p, accounts in self._touched.items():
            batch.account_states[p] = pipeline.snapshot_accounts(accounts)
        for account in out.forgotten:
            owner = self._partition_of.get(account)
            if owner is None:
                continue
            # The pipeline may still hold something of an account its detectors let go
            # (the account stage's sampler entry): that is its state now, not nothing.
            kept = pipeline.snapshot_accounts([account])
            if kept:
                batch.account_states.setdefault(owner, {}).update(kept)
                continue
            del self._partition_of[account]
            batch.forgotten.setdefault(owner, []).append(account)
        batch.shared = SharedCheckpoint(
            state=pipeline.snapshot_shared(),
            feedback_position=self.feedback_position,
            offsets=dict(self._offsets),
            topic_id=self._topic_id,
            sources=dict(self.handoff.done) if self.handoff is not None else {},
        )
        self._send_handoff(out.handoff)  # once: a retried commit confirms, never resends
        self._retry(lambda: self._commit(batch, out), "checkpoint")
        self._commit_kafka(batch)
        s = self.stats
        s.processed += batch.processed
        s.rejected += batch.rejected
        s.duplicates += batch.duplicates
        s.checkpoints += 1
        self._feedback_learnt = False
        self._reset_batch()

    def _commit(self, batch: Batch, out: BatchOutput) -> None:
        if self.sink is not None and (
            out.risks or out.alerts or out.clusters or out.chart_points or out.raised
        ):
            self.sink.write(
                out, lambda pipe: self.checkpointer.queue(pipe, batch), self._confirm_sends
            )
        else:
            self._confirm_sends([])
            self.checkpointer.commit(batch)

    def _send_handoff(self, events: list[HandoffEvent]) -> None:
        """Queue the account stage's hand-off (:mod:`distillguard.stream.handoff`), each
        partition's to its twin; confirmed with the alerts and dead letters, before the
        checkpoint commits. A crash before the commit sends it again from the re-read
        events: the cluster stage drops the repeats by their request offsets."""
        if self.handoff_topic is None:
            return
        try:
            send_batches(
                self.publisher,
                self.handoff_topic,
                events,
                self._handoff_partitions,
                self._batch.next_offsets,
            )
        except ValueError as exc:
            raise WorkerError(str(exc)) from None

    def _confirm_sends(self, alerts: list[Alert]) -> None:
        """Publish the alerts and make sure Kafka has them and every dead letter."""
        for alert in alerts:
            self.publisher.send(alert.subject_id, dumps(alert))
        self.dead_letters.confirm()

    def _retry(self, action: Any, what: str) -> None:
        """Run ``action`` until it succeeds; transient outages are waited out, within limits."""
        pauses = _Backoff()
        limit = self.settings.worker.outage_exit_s
        while True:
            try:
                action()
                return
            except _TRANSIENT as exc:
                waited = pauses.waited
                if self._stop:
                    raise WorkerError(
                        f"stopped while the {what} could not be written ({exc}); the next"
                        " start resumes from the last checkpoint"
                    ) from None
                if waited > limit:
                    raise WorkerError(
                        f"{what} failed for {waited:.0f} s ({exc}); exiting so that a restart"
                        " resumes from the last checkpoint"
                    ) from None
                log.warning(f"{what} failed, retrying", extra={"error": str(exc)})
                pauses.sleep()

    def _commit_kafka(self, batch: Batch) -> None:
        consumer = self._consumer
        if consumer is None or not batch.next_offsets:
            return
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

    # -- analysts' labels ----------------------------------------------------------------
    _feedback_learnt = False

    def _learn_feedback(self, min_interval_s: float = 1.0) -> int:
        """Teach the pipeline the labels that arrived since the last poll (checkpointed)."""
        now = time.monotonic()
        if now - self._last_feedback_poll < min_interval_s:
            return 0
        self._last_feedback_poll = now
        try:
            labels, position = read_labels(self.redis, self.feedback_position)
        except redis.exceptions.RedisError as exc:
            log.warning("feedback stream unavailable", extra={"error": str(exc)})
            return 0
        self.feedback_position = position
        for label in labels:
            try:
                self.pipeline.learn_label(label)
            except Exception:  # a bad label must not stop the stream
                log.exception(
                    "pipeline failed to learn a label", extra={"account": label.account_id}
                )
        if labels:
            self._feedback_learnt = True
            log.info("learnt analyst labels", extra={"labels": len(labels)})
        return len(labels)

    # -- observability -------------------------------------------------------------------
    def _stats_dict(self) -> dict[str, int]:
        s = self.stats
        return {
            "processed": s.processed,
            "rejected": s.rejected,
            "duplicates": s.duplicates,
            "checkpoints": s.checkpoints,
            "rollbacks": s.rollbacks,
        }

    def report(self, consumer: KafkaConsumer) -> None:
        """Log counters and publish consumer lag where the API's /metrics can read it.

        Lag counts from what the merge has *processed*, not what was fetched.
        """
        lag = None
        try:
            assignment = sorted(self._assigned, key=lambda tp: tp.partition)
            if assignment:
                ends = consumer.end_offsets(assignment)
                lag = sum(
                    max(0, ends.get(tp, 0) - self._offsets.get(tp.partition, 0))
                    for tp in assignment
                )
                now = round(time.time(), 3)
                pipe = self.redis.pipeline(transaction=False)
                pipe.hset(self.stats_key, mapping={"lag": lag, "lag_updated_at": now})
                pipe.hset(schema.WORKER_LAG, self.worker_name, f"{lag} {now}")
                pipe.execute()
                prune_worker_lags(self.redis, now)
        except (KafkaError, redis.exceptions.RedisError) as exc:
            log.debug("lag unavailable", extra={"error": str(exc)})
        log.info("worker stats", extra={**self._stats_dict(), "lag": lag})
