"""Bounded memory of recently seen ``event_id``s, per partition.

A producer that retries, or an upstream that replays a log segment, can publish the
same request twice; CONTRACT §1 says the same id is the same request. Events are
keyed by account, so duplicates land in the same partition and a per-partition
window suffices. The window is bounded by count so memory stays flat however long
the worker runs; ids older than the window are forgotten (documented trade-off).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


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
