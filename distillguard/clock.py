"""The one event-time clock every stage reads.

Detection decays, expires and schedules by *event time*, never by wall clock: a
replay of last week's logs must give the answers live processing gave. Which event
time, though? Taking "the largest timestamp seen" lets one partition racing ahead (or
one event stamped years ahead) age every other account's evidence. So the clock is a
watermark, the way Flink and Kafka Streams keep one:

- the edge (worker, replay) decides the order events are processed in — the worker
  merges its partitions by event time (:mod:`distillguard.stream.merge`), so what it
  processes next is the minimum over the partitions it owns;
- the clock follows the *median* of the last few processed event times, so a single
  event stamped ahead (still within the bounds) is processed for its own account
  without moving everyone's clock;
- the edge rejects events far outside the watermark, either way (:meth:`EventClock.judge`),
  before they reach any detector;
- the clock only moves forward: a slightly late event is processed with the clock
  where it is.

Exactly one stage observes the clock: the pipeline that created it (the top of the
pipeline); stages handed a clock only read it.
"""

from __future__ import annotations

import math

import msgspec

__all__ = ["ClockState", "EventClock"]

#: events in the median window: one outlier among five cannot move the watermark
_WINDOW = 5


class ClockState(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The clock in a checkpoint (``distillguard.detectors.state``): watermark and window.

    An empty ``recent`` (a checkpoint that did not keep the window) restarts the median
    at the restored watermark.
    """

    now: float = -math.inf
    recent: list[float] = []
    next: int = 0


class EventClock:
    """A monotone event-time watermark with bounds on what it accepts.

    Parameters
    ----------
    max_ahead_s
        An event stamped more than this ahead of the watermark is rejected: one
        far-future timestamp must not make every other account look idle.
    max_behind_s
        An event stamped more than this behind the watermark is rejected: its window
        has long been closed, and accepting it would rewrite history.

    Examples
    --------
    >>> clock = EventClock(max_ahead_s=3600, max_behind_s=86400)
    >>> clock.now
    -inf
    >>> for ts in (990.0, 995.0, 1_000.0):
    ...     clock.observe(ts)
    >>> clock.now   # the median of the last five (two not yet seen count as -inf)
    990.0
    >>> clock.observe(1_000.0 + 5 * 86400)   # one event stamped days ahead...
    >>> clock.now                           # ...does not move the watermark
    995.0
    >>> clock.observe(900.0); clock.now     # a late one never moves it back
    995.0
    >>> clock.judge(1_000.0 + 7200)
    'event time 2.0 h ahead of the stream watermark (limit 1.0 h)'
    >>> clock.judge(1_000.0 - 2 * 86400)
    'event time 48.0 h behind the stream watermark (limit 24.0 h)'
    """

    __slots__ = ("_next", "_recent", "max_ahead_s", "max_behind_s", "now")

    def __init__(self, max_ahead_s: float = math.inf, max_behind_s: float = math.inf) -> None:
        self.max_ahead_s = max_ahead_s
        self.max_behind_s = max_behind_s
        self.now = -math.inf
        self._recent = [-math.inf] * _WINDOW
        self._next = 0

    def observe(self, ts: float) -> None:
        """One processed event's time: the watermark moves to the recent median if later."""
        recent = self._recent
        i = self._next
        recent[i] = ts
        self._next = i + 1 if i + 1 < _WINDOW else 0
        median = sorted(recent)[_WINDOW // 2]
        if median > self.now:
            self.now = median

    def advance(self, ts: float) -> None:
        """Move the watermark to ``ts`` if that is later (restoring a checkpoint, tests)."""
        if ts > self.now:
            self.now = ts

    def to_state(self) -> ClockState:
        """The watermark and the recent window, for checkpoints (lossless)."""
        return ClockState(now=self.now, recent=list(self._recent), next=self._next)

    def restore(self, state: ClockState) -> None:
        """Replace watermark and window with a :meth:`to_state`'s.

        Exactly, even backwards: a rollback re-reads events from the checkpoint, and they
        must meet the clock they met then. A checkpoint without the window restarts the
        median at the restored watermark.
        """
        self.now = state.now
        if len(state.recent) == _WINDOW:
            self._recent = list(state.recent)
            self._next = state.next % _WINDOW
        else:
            self._recent = [-math.inf] * _WINDOW
            self._next = 0

    def judge(self, ts: float) -> str | None:
        """Why ``ts`` is unacceptable at the current watermark, or None if it is fine."""
        now = self.now
        if now == -math.inf:
            return None
        if ts - now > self.max_ahead_s:
            return (
                f"event time {(ts - now) / 3600:.1f} h ahead of the stream watermark "
                f"(limit {self.max_ahead_s / 3600:.1f} h)"
            )
        if now - ts > self.max_behind_s:
            return (
                f"event time {(now - ts) / 3600:.1f} h behind the stream watermark "
                f"(limit {self.max_behind_s / 3600:.1f} h)"
            )
        return None

    def finite(self) -> float | None:
        """The watermark, or None before the first event."""
        return self.now if math.isfinite(self.now) else None
