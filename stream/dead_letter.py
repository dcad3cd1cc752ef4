"""Dead-lettering: a bad message is kept, byte for byte, with the reason it was refused.

The value and key are the original bytes; the reason and source coordinates travel
as headers (the convention Kafka Connect uses), so a fixed consumer can re-publish
the value unchanged.
"""

from __future__ import annotations

from distillguard.stream.producer import EventPublisher

REASON = "dlq.reason"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"


class DeadLetters:
    """Sends refused messages to the dead-letter topic; flushed before each checkpoint."""

    def __init__(self, publisher: EventPublisher, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic
        self.pending = 0

    def send(
        self, key: bytes | None, value: bytes, reason: str, topic: str, partition: int, offset: int
    ) -> None:
        headers = [
            (REASON, reason.encode()),
            (SOURCE_TOPIC, topic.encode()),
            (SOURCE_PARTITION, str(partition).encode()),
            (SOURCE_OFFSET, str(offset).encode()),
        ]
        self.publisher.send(key, value, headers=headers, topic=self.topic)
        self.pending += 1

    def flush(self) -> None:
        if self.pending:
            self.publisher.flush()
            self.pending = 0


def read_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a dead-lettered message as text (for tools and tests)."""
    return {k: v.decode() for k, v in headers or []}
