"""Publishing to Kafka: request events (``produce``, the simulator) and alerts."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaProducer


class EventPublisher:
    """A batching producer keyed by account, so one account's events stay in order.

    ``linger_ms`` and a large ``batch_size`` let kafka-python pack many small JSON
    events per request; ``acks=all`` so ``flush`` means the broker has them.
    """

    def __init__(self, bootstrap: str, topic: str, *, linger_ms: int = 20) -> None:
        self.topic = topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=linger_ms,
            batch_size=256 * 1024,
            max_request_size=16 * 1024 * 1024,
            retries=5,
        )

    def send(
        self,
        key: str | bytes | None,
        value: bytes,
        headers: Iterable[tuple[str, bytes]] | None = None,
        topic: str | None = None,
    ) -> None:
        if isinstance(key, str):
            key = key.encode()
        self._producer.send(
            topic or self.topic, key=key, value=value, headers=list(headers) if headers else None
        )

    def flush(self, timeout_s: float | None = 30.0) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.close()
