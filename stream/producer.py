"""Publishing to Kafka: request events (``produce``, the simulator), dead letters, alerts.

kafka-python's ``send`` only queues a record and its ``flush`` does not raise when a
record fails: the failure sits in the record's future, which nobody looked at, so a
dead letter, an alert or a line of ``distillguard produce`` could vanish while the
caller went on to commit offsets. :class:`EventPublisher` keeps every future since the
last flush and :meth:`EventPublisher.flush` raises :class:`PublishFailed` if any of
them failed or is still unconfirmed, so "flushed" means "the broker has all of them".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from kafka.record.default_records import DefaultRecordBatchBuilder

if TYPE_CHECKING:
    from distillguard.settings import Settings

#: Brokers' usual ``message.max.bytes``; ``topics.max_message_bytes`` in settings.
DEFAULT_MAX_REQUEST_SIZE = 1_048_576

Header = tuple[str, bytes]


class PublishFailed(RuntimeError):
    """Records that were handed to the producer but are not (known to be) on the broker.

    ``failed`` of ``attempted`` records failed or stayed unconfirmed; ``first_error``
    describes the first failure (the rest are usually the same cause).
    """

    def __init__(self, failed: int, attempted: int, first_error: str, what: str = "records"):
        self.failed = failed
        self.attempted = attempted
        self.confirmed = attempted - failed
        self.first_error = first_error
        super().__init__(
            f"{failed} of {attempted} {what} were not published (first error: {first_error})"
        )


class RecordTooLarge(ValueError):
    """A record bigger than the producer's ``max_request_size``: refused before sending.

    Raised by :meth:`EventPublisher.send` itself (kafka-python checks the size
    synchronously), so the caller can decide: ``produce`` counts it as a failed line,
    the dead-letter path truncates the original instead (``dead_letter``).
    """

    def __init__(self, size: int, limit: int, topic: str):
        self.size = size
        self.limit = limit
        super().__init__(
            f"a record of {size} bytes for {topic!r} exceeds the {limit}-byte producer limit"
            " (settings topics.max_message_bytes; brokers usually refuse more than 1 MiB)"
        )


def record_size(key: bytes | None, value: bytes | None, headers: Iterable[Header] = ()) -> int:
    """Upper bound of a record's size as kafka-python checks it against ``max_request_size``."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
    return size


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class EventPublisher:
    """A batching producer keyed by account, so one account's events stay in order.

    ``linger_ms`` and a large ``batch_size`` let kafka-python pack many small JSON
    events per request. ``acks='all'`` with idempotence (kafka-python 3.0 supports it
    and Tansu implements InitProducerId; set explicitly, so a conflicting option raises
    instead of silently turning it off): retries cannot duplicate or reorder records.
    ``max_request_size`` is the largest record it will send (default 1 MiB, as brokers'
    ``message.max.bytes``); a bigger one raises :class:`RecordTooLarge` from ``send``.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        linger_ms: int = 20,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
        delivery_timeout_ms: int = 120_000,
    ) -> None:
        self.topic = topic
        self.max_request_size = max_request_size
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            batch_size=256 * 1024,
            max_request_size=max_request_size,
            # Retries are bounded by time, not count (kafka-python's idempotent default);
            # kafka-python wants delivery_timeout_ms >= linger_ms + request_timeout_ms.
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(30_000, delivery_timeout_ms - linger_ms),
        )
        self._pending: list[FutureRecordMetadata] = []
        self._compact_at = 4096
        self._attempted = 0  # sends since the last flush (pending + compacted)
        self._failed = 0
        self._first_error: str | None = None

    @classmethod
    def for_settings(cls, settings: Settings, topic: str, **options: int) -> EventPublisher:
        """A publisher on ``settings``' cluster with its record-size limit."""
        return cls(
            settings.kafka_bootstrap,
            topic,
            max_request_size=settings.topics.max_message_bytes,
            **options,
        )

    def send(
        self,
        key: str | bytes | None,
        value: bytes,
        headers: Iterable[Header] | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> FutureRecordMetadata:
        """Queue one record; its outcome is checked by the next :meth:`flush`."""
        if isinstance(key, str):
            key = key.encode()
        topic = topic or self.topic
        header_list = list(headers) if headers else None
        size = record_size(key, value, header_list or ())
        if size > self.max_request_size:
            raise RecordTooLarge(size, self.max_request_size, topic)
        future = self._producer.send(
            topic, key=key, value=value, headers=header_list, partition=partition
        )
        self._pending.append(future)
        self._attempted += 1
        if len(self._pending) >= self._compact_at:
            self._compact()
        return future

    def _compact(self) -> None:
        """Fold completed futures into counts, so a long ``produce`` keeps memory flat."""
        still: list[FutureRecordMetadata] = []
        for future in self._pending:
            if not future.is_done:
                still.append(future)
            elif future.exception is not None:
                self._failed += 1
                if self._first_error is None:
                    self._first_error = _describe(future.exception)
        self._pending = still
        self._compact_at = max(4096, 2 * len(still))

    def flush(self, timeout_s: float | None = 30.0) -> int:
        """Wait for every record sent since the last flush; return how many were sent.

        Raises :class:`PublishFailed` if any of them failed, or is still unconfirmed
        after ``timeout_s`` (those stay pending: a later flush waits for them again).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        # KafkaTimeoutError, or kafka-python 3.0's UnknownError("Future not done") when
        # the broker refused a batch as too large and it was split: either way each
        # record's own future says what happened, so they are asked one by one.
        with contextlib.suppress(KafkaError):
            self._producer.flush(timeout=timeout_s)
        for future in self._pending:
            if not future.is_done:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                with contextlib.suppress(Exception):  # a failure is tallied by _compact
                    future.get(timeout=left)
        self._compact()
        unconfirmed = len(self._pending)
        failed, attempted, first = self._failed, self._attempted, self._first_error
        self._attempted, self._failed, self._first_error = unconfirmed, 0, None
        if failed or unconfirmed:
            if first is None:
                first = f"not acknowledged within {timeout_s} s"
            raise PublishFailed(failed + unconfirmed, attempted, first)
        return attempted

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush (raising :class:`PublishFailed` like :meth:`flush`), then close."""
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the body's exception is the one to see; do not mask it
            self._producer.close(timeout=10)
