"""Shared inter-arrival sequences: a run of one account's gaps that recurs in another's.

An operator can make every account pass for a person one by one by replaying one
recorded person's timing: sessions, think time, nights. Each account starts from its
own point of the recording at its own time, so no two are active together (nothing for
co-activity or campaign windows) and no clock is shared (nothing for phase-locking).
What the replay cannot hide is the recording itself: a run of consecutive gaps between
one account's requests -- 14 s, 52 s, 3 min, 21 s -- recurs, to network jitter, in
every sibling that passes the same point of it. People's gaps are drawn afresh.

The key of a run is its four gaps, each on a log scale of ``STEP`` (4%: jitter of a
fraction of a second moves a 20-second gap across a bin edge rarely), readable as
seconds (each bin's lower edge): ``g:13.8s,50.5s,177s,20.5s``. Chance is small and
measured: on the tuning run ``adaptive`` 101 (1,314 accounts, about 22 sampled keys
each) no two accounts shared more than one run but two scripted backends, which
shared two. So a link needs
``cadence_min_shared`` (3) shared runs, and each shared run counts by its rarity like
any value (a popular SDK's retry sequence is held by many and dropped as common).

Runs whose gaps are nearly alike (a metronome: ``sleep(5)`` in a loop, or a backend's
steady pace) are left out, since unrelated scripts share those; so are gaps under
``MIN_GAP_S`` (tool loops, retries) and over a day, and accounts busier than
``cadence_max_daily`` requests a day over their life (a busy backend offers thousands of
runs, and chance meets some of them; its own volume is for the account detectors).
One run in ``SAMPLE`` is kept, chosen by a hash of the run itself, so
two accounts that replay the same stretch keep the same runs (a min-hash). A run
seen by one account only is not evidence yet and costs no account any state: the
:class:`RunTable` remembers who showed it last, and a run becomes a value of the
evidence graph (held by both) once a second account shows it. So an honest account
holds next to no cadence keys, and a replaying one at most ``cadence_max_keys``.
"""

from __future__ import annotations

import math

#: Width of one gap bin, relative.
STEP = 0.04
MIN_GAP_S = 2.0
MAX_GAP_S = 86_400.0
#: One run in this many is kept (a power of two), the same ones for every account.
SAMPLE = 4
#: Bins between a run's shortest and longest gap at least (a factor 1.6): a metronome,
#: or a backend whose gaps vary a little, is what unrelated scripts share (measured on
#: ``default`` 2026: at 3 bins, scripted backends of different customers shared up to
#: 12 runs; at 12, at most 5, and those are left to ``cadence_max_daily``).
MIN_SPREAD = 12

_LOG_STEP = math.log1p(STEP)
_BITS = 9  # a gap bin: log(86_400 / 2) / log(1.04) = 272 < 512
_BIN_MASK = (1 << _BITS) - 1
#: the previous three gaps of an account, packed
RUN_MASK = (1 << 3 * _BITS) - 1
_SHIFT = 64 - SAMPLE.bit_length() + 1
_GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1
_FIRST = int(math.log(MIN_GAP_S) / _LOG_STEP)


def _label(b: int) -> str:
    g = math.exp((b + _FIRST) * _LOG_STEP)
    return f"{g:.2f}s" if g < 10 else f"{g:.1f}s" if g < 100 else f"{g:.0f}s"


#: the readable lower edge of every bin (distinct: tested)
LABELS = [_label(b) for b in range(int(math.log(MAX_GAP_S) / _LOG_STEP) - _FIRST + 1)]


def gap_bin(gap: float) -> int:
    """The bin of a gap between two requests, or -1 for one that breaks the run.

    >>> gap_bin(1.0), gap_bin(2.0), gap_bin(20.0) - gap_bin(19.5), LABELS[gap_bin(20.0)]
    (-1, 0, 1, '19.7s')
    """
    if gap < MIN_GAP_S or gap > MAX_GAP_S:
        return -1
    return int(math.log(gap) / _LOG_STEP) - _FIRST


def extend(run: int, b: int) -> int:
    """The run of the last three gaps after gap ``b``."""
    return ((run << _BITS) | b) & RUN_MASK


def run_of(run: int, b: int) -> int:
    """The run of the three gaps packed in ``run`` and gap ``b``, packed, if it is kept
    (sampled, and not a metronome); else -1.

    >>> bins = [gap_bin(g) for g in (14.0, 52.0, 181.0)]
    >>> run = (bins[0] << 18) | (bins[1] << 9) | bins[2]
    >>> kept = [run_of(run, gap_bin(g)) for g in (15.0, 21.0, 33.0, 47.0, 60.0, 90.0)]
    >>> [run_label(x) for x in kept if x >= 0]
    ['g:13.8s,50.5s,177s,32.8s']
    >>> run_of((20 << 18) | (21 << 9) | 20, 21)  # a metronome
    -1
    """
    x = (run << _BITS) | b
    if ((x * _GOLDEN) & _M64) >> _SHIFT:
        return -1
    g0, g1, g2 = run >> 2 * _BITS, (run >> _BITS) & _BIN_MASK, run & _BIN_MASK
    if max(g0, g1, g2, b) - min(g0, g1, g2, b) < MIN_SPREAD:
        return -1
    return x


def run_label(x: int) -> str:
    """The evidence key of a packed run: its four gaps, readable."""
    m = _BIN_MASK
    return (
        f"g:{LABELS[x >> 3 * _BITS]},{LABELS[(x >> 2 * _BITS) & m]},"
        f"{LABELS[(x >> _BITS) & m]},{LABELS[x & m]}"
    )


class RunTable:
    """Kept runs shown by one account so far: ``packed run -> (account, event time)``.

    Bounded by ``capacity`` (the oldest forgotten first; insertion order is event
    order, since a run is recorded when it is seen) and by age (:meth:`expire`).

    >>> t = RunTable(capacity=2)
    >>> t.meet(1, "a", 10.0), t.meet(1, "a", 20.0), t.meet(1, "b", 30.0)
    (None, None, ('a', 20.0))
    >>> for run, ts in ((2, 40.0), (3, 50.0), (4, 60.0)):
    ...     _ = t.meet(run, "c", ts)
    >>> sorted(t.seen), t.expire(55.0), sorted(t.seen)
    ([3, 4], 1, [4])
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen: dict[int, tuple[str, float]] = {}

    def meet(self, key: int, account: str, ts: float) -> tuple[str, float] | None:
        """The other account that showed run ``key`` (and when), now evidence; else
        None, and ``account`` is remembered as its latest holder."""
        seen = self.seen
        prior = seen.pop(key, None)
        if prior is not None and prior[0] != account:
            return prior
        seen[key] = (account, ts)
        if len(seen) > self.capacity:
            del seen[next(iter(seen))]
        return None

    def expire(self, oldest: float) -> int:
        """Forget runs last shown before ``oldest``; how many."""
        seen, gone = self.seen, 0
        while seen:
            key = next(iter(seen))
            if seen[key][1] >= oldest:
                break
            del seen[key]
            gone += 1
        return gone

    def to_state(self) -> list[tuple[int, str, float]]:
        return [(k, a, ts) for k, (a, ts) in self.seen.items()]

    def load(self, rows: list[tuple[int, str, float]]) -> None:
        self.seen = {k: (a, ts) for k, a, ts in rows}
