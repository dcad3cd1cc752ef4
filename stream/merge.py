"""Merging a worker's partitions into one event-time order, the same on every run.

Kafka orders events within a partition only; how one worker's fetches interleave
its partitions depends on timing. Shared detection state (population models, the
linkage graph, cluster ids) learns in processing order, so feeding events as they
happen to arrive makes two runs over the same topic disagree, and a crash change
the answer. Instead, the worker buffers what it fetched and always processes the
partition whose next event is earliest in event time — a k-way merge. Its order is
a function of the topic contents alone, so live processing, a restart from a
checkpoint and an offline replay of the same events (in time order) agree.

A partition takes part in the merge while it may still deliver: it is *ready* when
its next event is known — two entries buffered (so its key can look one ahead), or
one and the partition is caught up with its end. A partition with nothing buffered
that is not caught up makes the merge wait (more is being fetched); one caught up
with nothing buffered is idle and does not hold the others back (the Flink/Kafka
Streams rule for idle inputs). The key of a partition is the earlier of its next two
event times: a single event stamped ahead of its neighbours then cannot stall its
partition (and everything behind it) until the others catch up.

Entries that failed to decode carry no time and are handed out as soon as they reach
the head of their partition: dead-lettering them does not touch detection state.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any, NamedTuple

_INF = math.inf


class Entry(NamedTuple):
    """One fetched message: its offset, event time (None if it failed to decode), and
    what the worker will need to handle it (the decoded event, or the raw message and
    the reason it was refused)."""

    offset: int
    ts: float | None
    payload: Any


class PartitionMerge:
    """Per-partition buffers handed out in merged event-time order.

    Examples
    --------
    >>> m = PartitionMerge()
    >>> m.assign([0, 1])
    >>> m.extend(0, [Entry(0, 10.0, "a0"), Entry(1, 30.0, "a1")])
    >>> m.extend(1, [Entry(0, 20.0, "b0")])
    >>> m.pop() is None        # partition 1 might still deliver something before 20.0
    True
    >>> m.set_caught_up(1, True)
    >>> p, e = m.pop()
    >>> p, e.payload
    (0, 'a0')
    >>> m.pop() is None        # partition 0 has one entry left and is not caught up
    True
    >>> m.set_caught_up(0, True)
    >>> [(p, e.payload) for p, e in m.take(10)], m.pop(), len(m)
    ([(1, 'b0'), (0, 'a1')], None, 0)
    >>> m.extend(0, [Entry(2, 40.0, "a2"), Entry(3, 60.0, "a3")])
    >>> m.extend(1, [Entry(1, 50.0, "b1")])
    >>> m.set_caught_up(0, False)
    >>> [(p, e.payload) for p, e in m.take(10)]   # then partition 0 must fetch more
    [(0, 'a2')]
    """

    __slots__ = ("_buffers", "_caught_up", "_size")

    def __init__(self) -> None:
        self._buffers: dict[int, deque[Entry]] = {}
        self._caught_up: dict[int, bool] = {}
        self._size = 0

    def assign(self, partitions: list[int]) -> None:
        """Start over with exactly these partitions, nothing buffered."""
        self._buffers = {p: deque() for p in sorted(partitions)}
        self._caught_up = dict.fromkeys(self._buffers, False)
        self._size = 0

    def extend(self, partition: int, entries: list[Entry]) -> None:
        self._buffers[partition].extend(entries)
        self._size += len(entries)

    def set_caught_up(self, partition: int, caught_up: bool) -> None:
        self._caught_up[partition] = caught_up

    def __len__(self) -> int:
        return self._size

    def buffered(self, partition: int) -> int:
        return len(self._buffers[partition])

    def next_offset(self, partition: int) -> int | None:
        """Offset of the first entry not yet handed out (None if nothing is buffered)."""
        buf = self._buffers[partition]
        return buf[0].offset if buf else None

    def _key(self, partition: int) -> float | None:
        """The partition's merge key, or None if it is not ready (must wait)."""
        buf = self._buffers[partition]
        n = len(buf)
        if n == 0:
            return _INF if self._caught_up[partition] else None
        head = buf[0].ts
        if head is None:
            return -_INF  # a refused message: hand it out now
        if n >= 2:
            second = buf[1].ts
            return head if second is None or head <= second else second
        return head if self._caught_up[partition] else None

    def pop(self) -> tuple[int, Entry] | None:
        """The next entry in merged order with its partition, or None to wait for more."""
        best_p = -1
        best = _INF
        for p in self._buffers:
            key = self._key(p)
            if key is None:
                return None
            if key < best:
                best, best_p = key, p
        if best_p < 0:
            return None  # every partition idle: nothing buffered anywhere
        self._size -= 1
        return best_p, self._buffers[best_p].popleft()

    def take(self, limit: int) -> list[tuple[int, Entry]]:
        """Up to ``limit`` entries in merged order: what :meth:`pop` would hand out, one
        by one, at a heap operation per entry instead of a scan of every partition."""
        heap: list[tuple[float, int]] = []
        for p in self._buffers:
            key = self._key(p)
            if key is None:
                return []
            if key != _INF:
                heap.append((key, p))
        heapq.heapify(heap)
        out: list[tuple[int, Entry]] = []
        buffers, key_of = self._buffers, self._key
        while heap and len(out) < limit:
            p = heap[0][1]
            out.append((p, buffers[p].popleft()))
            key = key_of(p)
            if key is None:
                break  # this partition must fetch more before anything else goes
            if key == _INF:
                heapq.heappop(heap)  # drained and caught up: idle
            else:
                heapq.heapreplace(heap, (key, p))
        self._size -= len(out)
        return out

    def largest(self, count: int) -> list[int]:
        """The ``count`` partitions with the most buffered, for back-pressure."""
        ranked = sorted(self._buffers, key=lambda p: -len(self._buffers[p]))
        return [p for p in ranked[:count] if self._buffers[p]]
