"""Bounded memory of recently seen ``event_id``s, per partition.

A producer that retries, or an upstream that replays a log segment, can publish the
same request twice; CONTRACT §1 says the same id is the same request. Identity is
``(account_id, event_id)``: an id reused under *another* account is a different
request of that account (an upstream bug we cannot arbitrate), so it is counted for
its own account and can never suppress an event of somebody else. Because events are
keyed by account, a request and its duplicates land in one partition, and a
per-partition window decides with no cross-partition lookup: the cost scales with the
partitions, not with the whole stream. The window is bounded by count so memory stays
flat however long the worker runs; ids older than the window are forgotten
(documented trade-off).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distillguard.events import RequestEvent

#: between account and event id; ids cannot contain control characters (events.py)
_SEP = "\x1f"


def dedup_key(event: RequestEvent) -> str:
    """The identity of a request: its account and its id.

    >>> import msgspec
    >>> from distillguard.events import RequestEvent
    >>> e = RequestEvent(event_id="r1", ts=0.0, account_id="a", model="m",
    ...                  input_tokens=1, output_tokens=1, status=200)
    >>> dedup_key(e) == dedup_key(msgspec.structs.replace(e, account_id="b"))
    False
    """
    return event.account_id + _SEP + event.event_id


class DedupWindow:
    """The last ``size`` distinct ids; ``add`` says whether an id is new.

    Examples
    --------
    >>> w = DedupWindow(size=2)
    >>> w.add("a"), w.add("a"), w.add("b"), w.add("c"), w.add("a")
    (True, False, True, True, True)
    >>> len(w)
    2
    """

    __slots__ = ("_order", "_seen", "size")

    def __init__(self, size: int, ids: Iterable[str] = ()) -> None:
        self.size = size
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        for event_id in ids:
            self.add(event_id)

    def add(self, event_id: str) -> bool:
        if self.size <= 0:
            return True
        seen = self._seen
        if event_id in seen:
            return False
        seen.add(event_id)
        order = self._order
        order.append(event_id)
        if len(order) > self.size:
            seen.discard(order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen
