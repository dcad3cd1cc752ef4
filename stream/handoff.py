"""The hand-off topic between the account stage and the cluster stage, both ends.

Partition p of the hand-off topic carries what the account stage made of partition p
of ``api-requests``, in that partition's order. Each Kafka record is a batch: the
hand-off events of consecutive processed events with their request offsets, and
``through``, the last request offset the batch accounts for (events read but not
forwarded, such as dead letters, are covered by it: a batch with no events is a
position marker). One record per few hundred events, because kafka-python's cost
is per record: one record per event cost more CPU than the detectors (``make bench``);
compressed, because consecutive events of one account repeat most of a record.

Exactly-once in effect, by request offsets: an account worker that rolled back
sends batches again; the cluster stage keeps, per partition, the last request offset
it buffered and the last it processed (checkpointed), and drops what is at or below.
Dropped while buffering, by the partition's own contents, so repeats neither count
twice nor change the order its merge hands events out in. A partition of the
hand-off topic counts as caught up only once ``through`` reached the end of its
request partition (:meth:`HandoffReader.behind`): the cluster stage's watermark is
then the minimum over every account worker's progress, not over the ones that
happen to have written lately.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from itertools import accumulate, pairwise
from typing import Any

import msgspec

from distillguard.detectors.linkage.handoff import HandoffEvent
from distillguard.events import InvalidEvent
from distillguard.stream.merge import Entry
from distillguard.stream.producer import EventPublisher

#: events per Kafka record, and a bound on the bytes (under ``max_message_bytes``)
BATCH_EVENTS = 500
BATCH_BYTES = 400_000


class HandoffBatch(msgspec.Struct, array_like=True, gc=False):
    """One hand-off record: events with their request offsets, and how far it reaches.

    On the wire ``offsets`` holds the first offset and then each one's step from the
    one before (consecutive offsets, the common case, are runs of 1s that compress to
    nothing; absolute offsets were a tenth of a record).
    """

    through: int
    offsets: list[int] = msgspec.field(default_factory=list)
    events: list[HandoffEvent] = msgspec.field(default_factory=list)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(HandoffBatch)
#: first byte of a compressed record (a msgpack array never starts with it); ``z``:
#: offsets absolute (records written before the steps), ``y``: offsets as steps
_ZLIB = b"z"
_ZLIB_STEPS = b"y"
#: zlib level 6: 4.3% of the input's bytes on `default` (its first 300k events) for
#: ~1.9 µs per event; level 1 left 5.0% for ~0.9 µs. Decompressing costs ~0.4 µs.
#: (Records hold prompts and attributes only when the linkage reads them, so a record
#: is small: before that, level 1 took ~2.3 µs per event for 13% on `small`.)
_LEVEL = 6
#: a record inflating past this is refused (a compressed record is a few hundred kB)
MAX_INFLATED = 64 * 1024 * 1024


def encode_batch(batch: HandoffBatch) -> bytes:
    """One hand-off record: the batch as msgpack, zlib-compressed (about a fifth of
    its msgpack bytes)."""
    offsets = batch.offsets
    steps = [b - a for a, b in pairwise(offsets)]
    wire = HandoffBatch(batch.through, offsets[:1] + steps, batch.events)
    return _ZLIB_STEPS + zlib.compress(_ENCODER.encode(wire), _LEVEL)


def decode_batch(raw: bytes) -> HandoffBatch:
    """A hand-off record, or :class:`InvalidEvent` saying why it is not one."""
    steps = raw[:1] == _ZLIB_STEPS
    if steps or raw[:1] == _ZLIB:
        inflate = zlib.decompressobj()
        try:
            raw = inflate.decompress(raw[1:], MAX_INFLATED)
        except zlib.error as exc:
            raise InvalidEvent(f"not a linkage hand-off record: {exc}") from None
        if inflate.unconsumed_tail:
            raise InvalidEvent(f"hand-off record inflates past {MAX_INFLATED} bytes")
    try:
        batch = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidEvent(f"not a linkage hand-off record: {exc}") from None
    if steps and batch.offsets:
        if min(batch.offsets[1:], default=1) < 1:
            raise InvalidEvent("hand-off record with offsets out of order")
        batch.offsets = list(accumulate(batch.offsets))
    if len(batch.offsets) != len(batch.events):
        raise InvalidEvent("hand-off record with unequal offsets and events")
    if batch.offsets and max(batch.offsets) > batch.through:
        raise InvalidEvent("hand-off record with offsets beyond its `through`")
    return batch


def send_batches(
    publisher: EventPublisher,
    topic: str,
    events: list[HandoffEvent],
    sources: list[tuple[int, int]],
    consumed: dict[int, int],
) -> int:
    """Queue one checkpoint's hand-off (:func:`encode_batches`); returns the records
    queued (confirmed by the publisher's next flush)."""
    records = encode_batches(events, sources, consumed)
    for p, record in records:
        publisher.send(None, record, topic=topic, partition=p)
    return len(records)


def encode_batches(
    events: list[HandoffEvent], sources: list[tuple[int, int]], consumed: dict[int, int]
) -> list[tuple[int, bytes]]:
    """(partition, record) of one checkpoint's hand-off: ``events[i]`` came from
    (partition, offset) ``sources[i]``; ``consumed`` is the next request offset per
    partition read since the last checkpoint (a partition read without an event
    forwarded gets a position marker)."""
    if len(events) != len(sources):
        raise ValueError(
            f"the pipeline handed off {len(events)} events for {len(sources)} processed:"
            " is `worker.stage: account` running the account stage?"
        )
    by_partition: dict[int, tuple[list[int], list[HandoffEvent]]] = {}
    for (p, offset), event in zip(sources, events, strict=True):
        offsets, batch = by_partition.setdefault(p, ([], []))
        offsets.append(offset)
        batch.append(event)
    out: list[tuple[int, bytes]] = []
    for p, next_offset in consumed.items():
        offsets, batch = by_partition.get(p, ([], []))
        for chunk_offsets, chunk in _chunks(offsets, batch):
            through = next_offset - 1 if chunk_offsets[-1] == offsets[-1] else chunk_offsets[-1]
            out.append((p, encode_batch(HandoffBatch(through, chunk_offsets, chunk))))
        if not offsets:
            out.append((p, encode_batch(HandoffBatch(next_offset - 1))))
    return out


def _chunks(
    offsets: list[int], events: list[HandoffEvent]
) -> Iterable[tuple[list[int], list[HandoffEvent]]]:
    start = 0
    size = 0
    for i, e in enumerate(events):
        size += 200 + len(e.prompt or "") + len(e.system_prompt or "")
        if i + 1 - start >= BATCH_EVENTS or size >= BATCH_BYTES:
            yield offsets[start : i + 1], events[start : i + 1]
            start, size = i + 1, 0
    if start < len(events):
        yield offsets[start:], events[start:]


class Inner:
    """One event of a hand-off record, as the worker's merge handles a message: its
    dead letter carries the event alone. ``source``: the request offset up to which
    handing it out accounts (its own; a record's last event: the record's ``through``)."""

    __slots__ = ("event", "offset", "source")

    key = None

    def __init__(self, event: HandoffEvent, offset: int, source: int) -> None:
        self.event = event
        self.offset = offset
        self.source = source

    @property
    def value(self) -> bytes:
        return _ENCODER.encode(self.event)


class HandoffReader:
    """The cluster stage's end: hand-off records into merge entries, repeats dropped.

    ``seen`` is, per partition, the last request offset buffered; ``done`` the last
    processed (what a checkpoint keeps: a restart re-buffers from there).
    """

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.repeats = 0

    def restore(self, done: dict[int, int]) -> None:
        self.done = dict(done)
        self.seen = dict(done)

    def entries(self, partition: int, messages: Iterable[Any]) -> list[Entry]:
        """Merge entries of these records: (message, event) payloads in order.

        Every event but a record's last gets the record's offset minus one as its own:
        the worker resumes from an event's offset plus one, so a checkpoint taken
        inside a record re-reads the record, and the events already processed are
        dropped as repeats.
        """
        out: list[Entry] = []
        seen = self.seen
        for msg in messages:
            try:
                batch = decode_batch(msg.value)
            except InvalidEvent as exc:
                out.append(Entry(msg.offset, None, (msg, exc.reason)))
                continue
            last_seen = seen.get(partition, -1)
            if batch.through <= last_seen:
                self.repeats += len(batch.events)
                continue
            keep = [
                (o, e) for o, e in zip(batch.offsets, batch.events, strict=True) if o > last_seen
            ]
            self.repeats += len(batch.events) - len(keep)
            seen[partition] = batch.through
            final = len(keep) - 1
            for i, (source, event) in enumerate(keep):
                if i == final:  # handing it out accounts for the record, markers included
                    offset, source = msg.offset, batch.through
                else:
                    offset = msg.offset - 1
                out.append(Entry(offset, event.ts, (Inner(event, msg.offset, source), event)))
        return out

    def behind(self, ends: dict[int, int]) -> set[int]:
        """Partitions whose request partition (ending at ``ends[p]``) holds events the
        account stage has not forwarded yet."""
        seen = self.seen
        return {p for p, end in ends.items() if seen.get(p, -1) + 1 < end}
