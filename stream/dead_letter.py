"""Dead-lettering: a bad message is kept, byte for byte, with the reason it was refused.

The value and key are the original bytes; the reason and source coordinates travel
as headers (the convention Kafka Connect uses), so a fixed consumer can re-publish
the value unchanged.

One exception: an original too big for the producer's record limit (a message the
decoder refused *because* it is too big, say) cannot travel whole. Rather than let the
dead letter fail, and with it the batch, its value is cut to fit and the headers say
so: ``dlq.truncated`` holds the original size in bytes and ``dlq.original.sha256``
its digest, and the source coordinates still point at the full original for as long
as the source topic retains it.
"""

from __future__ import annotations

import hashlib

from distillguard.stream.producer import EventPublisher, record_size

REASON = "dlq.reason"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"
TRUNCATED = "dlq.truncated"
ORIGINAL_SHA256 = "dlq.original.sha256"

#: Longest reason kept (reasons quote exception messages, which can be long).
MAX_REASON_BYTES = 4096
#: Longest key kept when the key itself would not leave room for a value.
MAX_KEY_BYTES = 1024


class DeadLetters:
    """Sends refused messages to the dead-letter topic; flushed before each checkpoint."""

    def __init__(self, publisher: EventPublisher, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic
        self.pending = 0
        self.truncated = 0
        #: what was sent since the last confirmation: re-sent if a confirmation failed
        self._unconfirmed: list[tuple[bytes | None, bytes, str, str, int, int]] = []
        self._resend = False

    def send(
        self, key: bytes | None, value: bytes, reason: str, topic: str, partition: int, offset: int
    ) -> None:
        """Queue one dead letter; never refused for its size (see the module docstring)."""
        self._unconfirmed.append((key, value, reason, topic, partition, offset))
        self._publish(key, value, reason, topic, partition, offset)

    def _publish(
        self, key: bytes | None, value: bytes, reason: str, topic: str, partition: int, offset: int
    ) -> None:
        headers = [
            (REASON, _clip(reason, MAX_REASON_BYTES)),
            (SOURCE_TOPIC, topic.encode()),
            (SOURCE_PARTITION, str(partition).encode()),
            (SOURCE_OFFSET, str(offset).encode()),
        ]
        limit = self.publisher.max_request_size
        if record_size(key, value, headers) > limit:
            key, value, headers = _cut_to_fit(key, value, headers, limit)
            self.truncated += 1
        self.publisher.send(key, value, headers=headers, topic=self.topic)
        self.pending += 1

    def flush(self) -> None:
        """Wait until the broker has every dead letter; :class:`PublishFailed` if not."""
        if self.pending:
            self.pending = 0
            self.publisher.flush()

    def confirm(self) -> None:
        """Make sure the broker has every dead letter since the last confirmation.

        After a failed attempt (``PublishFailed``) all of them are sent again: a dead
        letter may then arrive twice (at-least-once), but none is lost. The worker
        calls this before it commits the offsets the dead letters cover.
        """
        if self._resend:
            for record in self._unconfirmed:
                self._publish(*record)
        self._resend = True
        self.publisher.flush()
        self._resend = False
        self._unconfirmed.clear()
        self.pending = 0

    def discard(self) -> None:
        """Forget unconfirmed dead letters: the worker rolled back and will re-read them."""
        self._unconfirmed.clear()
        self._resend = False
        self.pending = 0


def _cut_to_fit(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], limit: int
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The record with its value (and, if need be, key) cut so that it fits ``limit``."""
    headers = [
        *headers,
        (TRUNCATED, str(len(value)).encode()),
        (ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    ]
    if key is not None and record_size(key, b"", headers) > limit // 2:
        key = key[:MAX_KEY_BYTES]
    room = limit - record_size(key, b"", headers)
    # The size estimate is an upper bound that grows with the value's varint length:
    # shrink until it fits (one or two steps).
    keep = max(0, room)
    while keep > 0 and record_size(key, value[:keep], headers) > limit:
        keep = max(0, keep - 16)
    return key, value[:keep], headers


def _clip(text: str, limit: int) -> bytes:
    """``text`` as UTF-8, cut to at most ``limit`` bytes on a character boundary."""
    raw = text.encode()
    return raw if len(raw) <= limit else raw[:limit].decode(errors="ignore").encode()


def read_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a dead-lettered message as text (for tools and tests)."""
    return {k: v.decode() for k, v in headers or []}
