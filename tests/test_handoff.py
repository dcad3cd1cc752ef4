"""The hand-off records between the account and cluster stages, without a broker.

Batches round-trip; repeats sent after an account worker's rollback are dropped by
their request offsets; a checkpoint inside a record resumes inside it; markers move
the cluster stage's idea of how far the account stage got; a record that is not one
(or inflates without bound) is refused with a reason.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import msgspec
import pytest

from distillguard.detectors.linkage.handoff import HandoffEvent
from distillguard.events import InvalidEvent
from distillguard.stream.handoff import (
    BATCH_EVENTS,
    MAX_INFLATED,
    HandoffBatch,
    HandoffReader,
    decode_batch,
    encode_batch,
    encode_batches,
)


def _event(i: int) -> HandoffEvent:
    return HandoffEvent(
        event_id=f"e{i}",
        ts=1_790_000_000.0 + i,
        account_id=f"a{i % 3}",
        model="-",
        input_tokens=1,
        output_tokens=2,
        status=200,
        prompt=f"question {i}",
    )


def _messages(records: list[tuple[int, bytes]], first_offset: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(value=r, offset=first_offset + k) for k, (_, r) in enumerate(records)]


def test_a_checkpoints_hand_off_round_trips_in_order_per_partition() -> None:
    events = [_event(i) for i in range(BATCH_EVENTS + 10)]
    sources = [(0, 100 + i) for i in range(len(events))]
    records = encode_batches(events, sources, {0: 100 + len(events) + 3, 1: 7})
    by_partition = [p for p, _ in records]
    assert by_partition.count(0) == 2 and by_partition.count(1) == 1  # two chunks, a marker
    first, second = (decode_batch(r) for p, r in records if p == 0)
    assert first.events == events[:BATCH_EVENTS] and second.events == events[BATCH_EVENTS:]
    assert first.through == first.offsets[-1]
    assert second.through == 100 + len(events) + 2  # the three read but not forwarded
    marker = next(decode_batch(r) for p, r in records if p == 1)
    assert marker.events == [] and marker.through == 6
    with pytest.raises(ValueError, match="handed off"):
        encode_batches(events, sources[:-1], {0: 1})


def test_repeats_are_dropped_and_a_restart_resumes_inside_a_record() -> None:
    events = [_event(i) for i in range(6)]
    records = encode_batches(events, [(0, i) for i in range(6)], {0: 6})
    reader = HandoffReader()
    entries = reader.entries(0, _messages(records, first_offset=40))
    assert [e.payload[1].event_id for e in entries] == [f"e{i}" for i in range(6)]
    # the worker resumes from an entry's offset + 1: inside the record until its last
    assert [e.offset for e in entries] == [39] * 5 + [40]
    # the same record again (an account worker rolled back): nothing new
    assert reader.entries(0, _messages(records, first_offset=41)) == []
    assert reader.repeats == 6
    # a restart after processing e0..e2: the record is read again, e3.. come out
    restarted = HandoffReader()
    restarted.restore({0: 2})
    again = restarted.entries(0, _messages(records, first_offset=40))
    assert [e.payload[1].event_id for e in again] == ["e3", "e4", "e5"]
    assert [e.payload[0].source for e in again] == [3, 4, 5]
    # a record's last event accounts for what the record reaches (dead letters after it)
    tail = encode_batches(events[:2], [(0, 0), (0, 1)], {0: 5})
    assert [e.payload[0].source for e in HandoffReader().entries(0, _messages(tail))] == [0, 4]


def test_the_cluster_stage_knows_how_far_each_account_partition_was_read() -> None:
    reader = HandoffReader()
    reader.entries(0, _messages(encode_batches([_event(0)], [(0, 0)], {0: 4})))
    reader.entries(1, _messages(encode_batches([], [], {1: 9})))  # a marker only
    assert reader.behind({0: 4, 1: 9, 2: 1}) == {2}
    assert reader.behind({0: 5, 1: 9}) == {0}


def test_what_is_not_a_hand_off_record_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidEvent, match="not a linkage hand-off record"):
        decode_batch(b'{"event_id": "json"}')
    with pytest.raises(InvalidEvent, match="not a linkage hand-off record"):
        decode_batch(b"z" + b"not zlib")
    with pytest.raises(InvalidEvent, match="inflates past"):
        decode_batch(b"z" + zlib.compress(b"\x00" * (MAX_INFLATED + 1), 1))
    with pytest.raises(InvalidEvent, match="unequal"):
        decode_batch(encode_batch(HandoffBatch(5, [1, 2], [_event(1)])))
    with pytest.raises(InvalidEvent, match="beyond"):
        decode_batch(encode_batch(HandoffBatch(1, [2], [_event(2)])))
    reader = HandoffReader()
    [refused] = reader.entries(0, [SimpleNamespace(value=b"junk", offset=3)])
    assert refused.ts is None and "hand-off" in refused.payload[1]  # dead-lettered
    with pytest.raises(InvalidEvent, match="out of order"):
        decode_batch(encode_batch(HandoffBatch(9, [5, 3], [_event(1), _event(2)])))


def test_offsets_travel_as_steps_and_older_records_still_read() -> None:
    events = [_event(i) for i in range(6)]
    offsets = [10, 11, 12, 15, 16, 40]
    batch = decode_batch(encode_batch(HandoffBatch(41, offsets, events)))
    assert batch.offsets == offsets and batch.events == events and batch.through == 41
    older = b"z" + zlib.compress(msgspec.msgpack.encode(HandoffBatch(41, offsets, events)))
    assert decode_batch(older).offsets == offsets  # written before the steps
    # a run of consecutive offsets costs almost nothing once compressed
    run = HandoffBatch(10_499, list(range(10_000, 10_500)), [_event(0)] * 500)
    absolute = b"z" + zlib.compress(msgspec.msgpack.encode(run), 6)
    assert len(encode_batch(run)) < len(absolute) / 2
