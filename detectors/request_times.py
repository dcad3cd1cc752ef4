"""An account's last requests, kept so an analyst can see members of a cluster side by side.

A ring of the last ``cap`` event times per account, in whole epoch seconds as uint32
(an ``array("I")``: 4 bytes a request, no object per entry; good until 2106). Whole
seconds, because the picture it feeds (the cluster page's timeline, one row per
member) spans minutes to days: a second is far below a pixel there, and coordinated
fleets show as requests in the same second. Times are kept as they arrived (the
ring is a record of the stream, not a sorted set); :func:`in_order` gives them oldest
first in arrival order, and the reader sorts if it wants a time axis.

Per event the cost is one append or one item store and a cursor step. Memory is
bounded: 64 times cost 256 bytes plus the array's 80-byte header per account.
Checkpointed as little-endian bytes, oldest first (:func:`to_bytes`), so a restored
ring has its cursor at 0: the next write replaces the oldest time.

Examples
--------
>>> ring = new_ring()
>>> cursor = 0
>>> for ts in (10.5, 11.0, 12.9, 13.0):
...     cursor = record(ring, cursor, ts, cap=3)
>>> in_order(ring, cursor)
[11, 12, 13]
>>> restored = from_bytes(to_bytes(ring, cursor))
>>> in_order(restored, 0)
[11, 12, 13]
"""

from __future__ import annotations

from array import array

from distillguard.detectors.state import le_array, le_bytes

#: unsigned 32-bit items (``"I"`` is 4 bytes on every platform CPython supports)
TYPECODE = "I"
MAX_SECOND = 0xFFFF_FFFF

if array(TYPECODE).itemsize != 4:  # pragma: no cover - a platform this format does not know
    raise ImportError("array('I') is not 32-bit here: request times would not round-trip")


def new_ring() -> array[int]:
    """An empty ring; it grows by appends until ``cap`` times, then wraps."""
    return array(TYPECODE)


def record(ring: array[int], cursor: int, ts: float, cap: int) -> int:
    """Write one request time into ``ring``; return the cursor for the next write.

    Out-of-range times are clamped (before 1970 to 0, past 2106 to the last second)
    rather than refused: a malformed timestamp must not cost the account its state.
    """
    if ts >= MAX_SECOND:
        sec = MAX_SECOND
    elif ts > 0:
        sec = int(ts)
    else:
        sec = 0  # negative, zero or NaN
    if len(ring) < cap:
        ring.append(sec)
        return cursor
    if cap <= 0:
        return 0
    ring[cursor] = sec
    cursor += 1
    return 0 if cursor >= cap else cursor


def in_order(ring: array[int], cursor: int) -> list[int]:
    """The kept times, oldest first (arrival order)."""
    if cursor == 0:
        return ring.tolist()
    return ring[cursor:].tolist() + ring[:cursor].tolist()


def to_bytes(ring: array[int], cursor: int) -> bytes:
    """Checkpoint form: little-endian uint32, oldest first (empty ring: empty bytes)."""
    if cursor == 0:
        return le_bytes(ring)
    return le_bytes(ring[cursor:] + ring[:cursor])


def from_bytes(data: bytes, cap: int | None = None) -> array[int]:
    """Inverse of :func:`to_bytes`; keeps the newest ``cap`` times when ``cap`` is smaller.

    ValueError if ``data`` is not whole 4-byte items (a corrupt checkpoint).
    """
    if len(data) % 4:
        raise ValueError(f"request times: {len(data)} bytes is not a whole number of uint32")
    ring = le_array(TYPECODE, data)
    if cap is not None and len(ring) > cap:
        ring = ring[len(ring) - cap :] if cap > 0 else new_ring()
    return ring
