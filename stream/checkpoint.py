"""The checkpoint protocol: state, de-duplication memory and offsets move together.

After each batch, one Redis transaction (MULTI/EXEC) writes the state the batch
produced, the batch's event ids (the de-duplication window) and the next offset of
every partition in the batch. Only then are offsets committed to Kafka. So:

- a crash before EXEC leaves Redis as it was: the batch is redelivered and re-applied;
- a crash after EXEC but before the Kafka commit is harmless: on assignment the worker
  seeks to the offsets stored in Redis, which are the source of truth;
- a duplicate *published* event (same ``event_id``) is caught by the window.

Kafka's committed offsets are still written, for lag monitoring and for tools.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import redis

from distillguard.store import schema

# Key names live with every other key in ``distillguard.store.schema``.
COUNTS_KEY = schema.ACCOUNT_REQUESTS
STATS_KEY = schema.WORKER_STATS
offsets_key = schema.checkpoint_offsets
dedup_key = schema.checkpoint_seen
account_state_key = schema.checkpoint_account_state
shared_state_key = schema.checkpoint_shared
feedback_position_key = schema.checkpoint_feedback


@dataclass(slots=True)
class BatchResult:
    """Everything one batch changed, ready to be written atomically."""

    next_offsets: dict[int, int] = field(default_factory=dict)
    new_ids: dict[int, list[str]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    account_states: dict[int, dict[str, bytes]] = field(default_factory=dict)
    shared_state: bytes | None = None
    feedback_position: str | None = None


class Checkpointer:
    """Reads and writes one consumer group's checkpoint for one topic in Redis."""

    def __init__(self, client: redis.Redis, group: str, topic: str, dedup_window: int) -> None:
        self.client = client
        self.group = group
        self.topic = topic
        self.dedup_window = dedup_window
        self._offsets_key = offsets_key(group, topic)

    def load_offsets(self, partitions: list[int]) -> dict[int, int]:
        """Next offset to read per partition, for those with a checkpoint."""
        if not partitions:
            return {}
        values = self.client.hmget(self._offsets_key, [str(p) for p in partitions])
        return {p: int(v) for p, v in zip(partitions, values, strict=True) if v is not None}

    def load_seen(self, partition: int) -> list[str]:
        """The de-duplication window of a partition, oldest first."""
        raw = self.client.lrange(dedup_key(self.group, self.topic, partition), 0, -1)
        return [item.decode() for item in raw]

    def load_account_states(self, partition: int) -> dict[str, bytes]:
        raw = self.client.hgetall(account_state_key(self.group, self.topic, partition))
        return {k.decode(): v for k, v in raw.items()}

    def load_shared(self) -> tuple[bytes | None, str | None]:
        """The last shared-model snapshot and the feedback position learnt into it."""
        shared, position = self.client.mget(
            shared_state_key(self.group, self.topic), feedback_position_key(self.group, self.topic)
        )
        return shared, None if position is None else position.decode()

    def commit(self, batch: BatchResult) -> None:
        """Write the batch's effects and offsets in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        for account, n in batch.counts.items():
            pipe.hincrby(COUNTS_KEY, account, n)
        if self.dedup_window > 0:
            for partition, ids in batch.new_ids.items():
                if ids:
                    key = dedup_key(self.group, self.topic, partition)
                    pipe.rpush(key, *ids)
                    pipe.ltrim(key, -self.dedup_window, -1)
        if batch.next_offsets:
            pipe.hset(
                self._offsets_key,
                mapping={str(p): o for p, o in batch.next_offsets.items()},
            )
        for partition, states in batch.account_states.items():
            if states:
                pipe.hset(account_state_key(self.group, self.topic, partition), mapping=states)
        if batch.shared_state is not None:
            pipe.set(shared_state_key(self.group, self.topic), batch.shared_state)
            if batch.feedback_position is not None:
                pipe.set(feedback_position_key(self.group, self.topic), batch.feedback_position)
        pipe.hincrby(STATS_KEY, "processed", batch.processed)
        pipe.hincrby(STATS_KEY, "rejected", batch.rejected)
        pipe.hincrby(STATS_KEY, "duplicates", batch.duplicates)
        pipe.execute()
