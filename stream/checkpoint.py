"""The checkpoint: all state, the store's writes and the offsets they cover, in one commit.

Every checkpoint, one Redis transaction (MULTI/EXEC) writes

- the offsets of the next event to process, per partition;
- the de-duplication ids of the events processed since the previous checkpoint;
- the state of every account touched since then, under its partition (so it moves
  with the partition), and deletes the state of accounts the pipeline forgot;
- the pipeline's shared state (models, linkage graph, cluster-id counter, clock) and
  the feedback position learnt into it, *with the offsets it covers*;
- the risks, alerts, clusters and chart points the pipeline produced (the alert
  store's writes are queued into the same transaction by the worker's sink).

Kafka sends (dead letters, published alerts) are confirmed before it runs. Then:

- a crash before EXEC leaves Redis as it was: every event since the previous
  checkpoint is re-read from Kafka and re-processed from the previous state, in the
  same merged order, so it produces the same results and the same cluster ids;
- a crash after EXEC but before the Kafka offset commit is harmless: the worker seeks
  to the offsets in Redis, which are the source of truth;
- a duplicate *published* event (same account and ``event_id``) is caught by the
  window.

Stored checkpoints are versioned msgspec structs: a field added with a default reads
old checkpoints; a changed meaning bumps ``CHECKPOINT_VERSION``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import msgspec
import redis

from distillguard.store import schema
from distillguard.store.connection import text

CHECKPOINT_VERSION = 1
COUNTS_KEY = schema.ACCOUNT_REQUESTS
STATS_KEY = schema.WORKER_STATS


class SharedCheckpoint(msgspec.Struct, kw_only=True):
    """The shared part of a checkpoint: what a worker learnt across its partitions."""

    version: int = CHECKPOINT_VERSION
    #: the pipeline's ``snapshot_shared()``
    state: bytes = b""
    #: feedback stream id learnt up to
    feedback_position: str = "0-0"
    #: next offset per partition that ``state`` has seen everything before
    offsets: dict[int, int] = msgspec.field(default_factory=dict)
    #: id of the request topic the offsets belong to ("" if the broker reports none): a
    #: topic deleted and created again under the same name has a new id
    topic_id: str = ""
    #: the cluster stage's de-duplication by source: per hand-off partition, the request
    #: offset of the last record it took (an account stage that rolled back sends
    #: records again; those at or below are repeats)
    sources: dict[int, int] = msgspec.field(default_factory=dict)


_SHARED_DECODER = msgspec.msgpack.Decoder(SharedCheckpoint)
_ENCODER = msgspec.msgpack.Encoder()


@dataclass(slots=True)
class Batch:
    """Everything since the previous checkpoint, ready to be written atomically."""

    next_offsets: dict[int, int] = field(default_factory=dict)
    new_ids: dict[int, list[str]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    account_states: dict[int, dict[str, bytes]] = field(default_factory=dict)
    forgotten: dict[int, list[str]] = field(default_factory=dict)
    shared: SharedCheckpoint | None = None

    def __bool__(self) -> bool:
        return bool(self.next_offsets or self.shared is not None)


class Checkpointer:
    """Reads and writes one consumer group's checkpoint for one topic in Redis.

    ``instance`` names the shared state of one worker where several share a group.
    """

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        topic: str,
        dedup_window: int,
        instance: str = "",
        stats_key: str = STATS_KEY,
    ) -> None:
        self.client = client
        #: the counters' hash (the cluster stage of a split topology keeps its own)
        self.stats_key = stats_key
        self.group = group
        self.topic = topic
        self.dedup_window = dedup_window
        self._offsets_key = schema.checkpoint_offsets(group, topic)
        self.instance = instance
        self._shared_key = schema.checkpoint_shared(group, topic, instance)

    # -- reading (on start and after every change of assignment) -----------------------

    def load_offsets(self, partitions: Iterable[int]) -> dict[int, int]:
        """Next offset to read per partition, for those with a checkpoint."""
        partitions = list(partitions)
        if not partitions:
            return {}
        values = self.client.hmget(self._offsets_key, [str(p) for p in partitions])
        return {p: int(v) for p, v in zip(partitions, values, strict=True) if v is not None}

    def _sibling_shared(self) -> bytes | None:
        pattern = schema.checkpoint_shared(self.group, self.topic) + "*"
        keys = sorted(
            k for k in cast("list[bytes]", list(self.client.scan_iter(match=pattern, count=100)))
        )
        own = self._shared_key.encode()
        for key in keys:
            if key != own:
                return cast("bytes | None", self.client.get(key))
        return None

    def load_seen(self, partition: int) -> list[str]:
        """The de-duplication window of a partition, oldest first."""
        raw = self.client.lrange(schema.checkpoint_seen(self.group, self.topic, partition), 0, -1)
        return [text(item) for item in raw]

    def load_account_states(self, partition: int) -> dict[str, bytes]:
        key = schema.checkpoint_account_state(self.group, self.topic, partition)
        # msgpack states: only a bytes client (ours: no decode_responses) can read them
        states = cast("dict[bytes, bytes]", self.client.hgetall(key))
        return {k.decode(): v for k, v in states.items()}

    def load_shared(self) -> SharedCheckpoint | None:
        """The last shared checkpoint; ValueError if one is stored but unreadable.

        A named worker that has none of its own yet (a process added to the group)
        starts from a sibling's (the first by name): its shared models then know the
        stream from its start, as every other member's do, instead of meeting a
        partition mid-stream with an empty population and no idea which models are new.
        """
        # msgpack: only a bytes client (ours: no decode_responses) can read it
        raw = cast("bytes | None", self.client.get(self._shared_key))
        if raw is None and self.instance:
            raw = self._sibling_shared()
        if raw is None:
            return None
        try:
            shared = _SHARED_DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"shared checkpoint unreadable: {exc}") from None
        if shared.version > CHECKPOINT_VERSION:
            raise ValueError(
                f"shared checkpoint version {shared.version} is newer than this worker's"
                f" {CHECKPOINT_VERSION}: run the newer release, or reset the checkpoint"
            )
        return shared

    # -- writing ---------------------------------------------------------------------------

    def queue(self, pipe: redis.client.Pipeline, batch: Batch) -> None:
        """Queue the batch's checkpoint commands into ``pipe`` (inside its MULTI)."""
        group, topic = self.group, self.topic
        for account, n in batch.counts.items():
            pipe.hincrby(COUNTS_KEY, account, n)
        if self.dedup_window > 0:
            for partition, ids in batch.new_ids.items():
                if ids:
                    key = schema.checkpoint_seen(group, topic, partition)
                    pipe.rpush(key, *ids)
                    pipe.ltrim(key, -self.dedup_window, -1)
        for partition, states in batch.account_states.items():
            if states:
                key = schema.checkpoint_account_state(group, topic, partition)
                pipe.hset(key, mapping=states)  # type: ignore[arg-type]
        for partition, gone in batch.forgotten.items():
            if gone:
                pipe.hdel(schema.checkpoint_account_state(group, topic, partition), *gone)
        if batch.next_offsets:
            pipe.hset(
                self._offsets_key,
                mapping={str(p): o for p, o in batch.next_offsets.items()},
            )
        if batch.shared is not None:
            pipe.set(self._shared_key, _ENCODER.encode(batch.shared))
        stats = self.stats_key
        pipe.hincrby(stats, "processed", batch.processed)
        pipe.hincrby(stats, "rejected", batch.rejected)
        pipe.hincrby(stats, "duplicates", batch.duplicates)

    def reset(self) -> int:
        """Delete this group's checkpoint for the topic (every partition, every instance).

        For a topic that was re-created: the worker refuses offsets the topic cannot
        have, and this is how an operator says "start over". Returns keys deleted.
        """
        keys = list(self.client.scan_iter(match=f"dg:ckpt:{self.group}:{self.topic}:*"))
        return int(self.client.delete(*keys)) if keys else 0

    def commit(self, batch: Batch) -> None:
        """Write the batch on its own, in one transaction (no store writes with it)."""
        with self.client.pipeline(transaction=True) as pipe:
            self.queue(pipe, batch)
            pipe.execute()
