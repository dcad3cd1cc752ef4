"""Phase-locking to a controller's clock: a swarm whose requests leave on one scheduler's ticks.

A swarm of thousands of light accounts (a card, a home address and an SDK agent each,
3-10 requests a day, no template) shares no value, and any two of its accounts rarely
meet in a minute. What one scheduler cannot hide is its period: when most requests
leave on its ticks, every account's burst onsets keep one phase of one period, the
same phase for all of them. People's onsets keep no phase at any period of minutes.

1. *the clock*, found without being told: the burst onsets of the light candidates in
   the last ``search_s`` are pooled and binned at ``resolution_s``, and the power of
   the pooled Rayleigh sum ``|Σ exp(2πi t / P)|² / N`` is read off one FFT for every
   period ``P`` in ``[min_period_s, max_period_s]``. For onsets that ignore any clock
   the power at one period is Exp(1)-distributed, so the maximum over the ~3,000
   independent periods of a 12 h search is ~8; ``min_power`` is far above that. The
   period is then refined over the whole window (the longer the span, the sharper
   the period) and its phase is the pooled sum's angle.
2. *wall clocks are not a controller*: periods that divide an hour in whole seconds
   (60, 300, 900 s, ...) are left out: cron jobs and "every five minutes" schedules of
   unrelated honest customers share the wall clock's phase.
3. *each account against its own volume*: an account's score is the projection of its
   onsets' phases on the clock's, ``s = Σ cos(θ - φ) / sqrt(n / 2)``, about N(0, 1)
   whatever ``n`` is for an account that ignores the clock. It is locked when ``s``
   is above the normal quantile that leaves ``false_locks`` accounts locked by chance
   among all the candidates scored (a Bonferroni bound, so the bar rises with the
   population).
4. locked accounts, ``min_size`` or more, are one group; their onsets are taken out and
   the search repeated for a second clock, up to ``max_clocks`` (the same period again,
   or a harmonic of it, is the first clock's accounts just under the bar: it ends the
   search).

A scheduler with no fixed period (random delays) leaves no clock: that dodge costs the
operator the even load a period gives, and the fleets and campaign windows still see
when its accounts wake. The stage keys a locked group ``q:`` only for members whose own
behaviour passes the extraction gate.

State is per account its last ``max_onsets + 1`` onset times in whole seconds, for
``window_s`` (an ``array`` of machine ints: at most ~550 bytes of heap per account);
per onset one append; the search runs on the stage's cadence.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.state import PhaseState


@dataclass(frozen=True, slots=True)
class Clock:
    """One controller's clock and the accounts locked to it."""

    period_s: float
    #: pooled Rayleigh power over the search window (chance: Exp(1) per period)
    power: float
    members: list[str]


class PhaseClocks:
    """Finds controllers' clocks in pooled onsets and the accounts locked to them.

    Examples
    --------
    Forty people sending six requests a day at random, and twenty accounts of one
    scheduler sending twelve a day on its 431-second ticks: the clock is found, with
    the twenty on it.

    >>> import random
    >>> rng = random.Random(3)
    >>> pc = PhaseClocks(window_s=2 * 86_400, search_s=43_200, resolution_s=2.0,
    ...                  min_period_s=60, max_period_s=3_600, min_power=30.0,
    ...                  min_onsets=5, max_onsets=60, false_locks=0.2, min_size=6,
    ...                  max_clocks=2)
    >>> onsets = [(rng.uniform(0, 2 * 86_400), f"u{i}") for i in range(40) for _ in range(12)]
    >>> ticks = [431.0 * k for k in range(2 * 86_400 // 431)]
    >>> onsets += [(rng.choice(ticks) + rng.uniform(-20, 20), f"s{i}")
    ...            for i in range(20) for _ in range(24)]
    >>> for ts, acct in sorted(onsets):
    ...     pc.onset(acct, ts)
    >>> (clock,) = pc.clocks(2 * 86_400)
    >>> round(clock.period_s), clock.members == sorted(f"s{i}" for i in range(20))
    (431, True)
    """

    def __init__(
        self,
        *,
        window_s: float,
        search_s: float,
        resolution_s: float,
        min_period_s: float,
        max_period_s: float,
        min_power: float,
        min_onsets: int,
        max_onsets: int,
        false_locks: float,
        min_size: int,
        max_clocks: int,
        harmonics: int = 1,
        decoys: int = 0,
        min_score: float = 0.0,
    ) -> None:
        self.window_s = window_s
        self.search_s = min(search_s, window_s)
        self.resolution_s = resolution_s
        self.min_period_s = max(min_period_s, 4 * resolution_s)
        self.max_period_s = max_period_s
        self.min_power = min_power
        self.min_onsets = max(2, min_onsets)
        self.max_onsets = max(self.min_onsets, max_onsets)
        self.false_locks = false_locks
        self.min_size = max(2, min_size)
        self.max_clocks = max_clocks
        self.harmonics = max(1, harmonics)
        self.decoys = max(0, decoys)
        self.min_score = min_score
        #: account -> its last ``max_onsets + 1`` onset times (whole seconds), oldest
        #: first; machine ints (8 bytes each, not a Python int object per onset)
        self.recent: dict[str, array[int]] = {}

    @classmethod
    def from_config(cls, cfg: LinkageConfig) -> PhaseClocks:
        """The ``phase_*`` parameters of the linkage settings."""
        return cls(
            window_s=cfg.phase_window_s,
            search_s=cfg.phase_search_s,
            resolution_s=cfg.phase_resolution_s,
            min_period_s=cfg.phase_min_period_s,
            max_period_s=cfg.phase_max_period_s,
            min_power=cfg.phase_min_power,
            min_onsets=cfg.phase_min_onsets,
            max_onsets=cfg.phase_max_onsets,
            false_locks=cfg.phase_false_locks,
            min_size=cfg.phase_min_size,
            max_clocks=cfg.phase_max_clocks,
            harmonics=cfg.phase_harmonics,
            decoys=cfg.phase_decoys,
            min_score=cfg.phase_min_score,
        )

    # -- hot path ------------------------------------------------------------------------

    def onset(self, account_id: str, ts: float) -> None:
        """Remember a burst onset (event time moves forward through the merge)."""
        t = int(ts)
        times = self.recent.get(account_id)
        if times is None:
            self.recent[account_id] = array("q", (t,))
        else:
            times.append(t)
            if len(times) > self.max_onsets + 1:
                del times[0]

    def forget(self, account_id: str) -> None:
        """An idle account the stage dropped."""
        self.recent.pop(account_id, None)

    # -- cadence -------------------------------------------------------------------------

    def clocks(self, now: float, eligible: Callable[[str], bool] | None = None) -> list[Clock]:
        """Clocks found in the candidates' onsets, each with the accounts locked to it.

        ``eligible`` narrows who may be *locked* (the stage passes its extraction
        gate); every light account's onsets still go into the search and into the
        chance bar, so leaving people out makes no one look more locked.
        """
        if not math.isfinite(now):
            return []
        oldest = int(now - self.window_s)
        accounts: list[str] = []
        series: list[np.ndarray] = []
        for aid in sorted(self.recent):
            times = self.recent[aid]
            while times and times[0] < oldest:
                del times[0]
            if not times:
                del self.recent[aid]
            elif self.min_onsets <= len(times) <= self.max_onsets:
                accounts.append(aid)  # a full list means more onsets than a candidate has
                series.append(np.frombuffer(times, dtype=np.int64).astype(np.float64))
        if len(accounts) < self.min_size:
            return []
        found: list[Clock] = []
        left = list(range(len(accounts)))
        for _ in range(self.max_clocks):
            clock = self._find(now, accounts, series, left, eligible)
            if clock is None or any(
                _related(clock.period_s, c.period_s, self.search_s) for c in found
            ):
                break  # the same clock again (accounts just under the bar), or a harmonic
            found.append(clock)
            taken = set(clock.members)
            left = [i for i in left if accounts[i] not in taken]
        return found

    def _find(
        self,
        now: float,
        accounts: list[str],
        series: list[np.ndarray],
        left: list[int],
        eligible: Callable[[str], bool] | None,
    ) -> Clock | None:
        if len(left) < self.min_size:
            return None
        start = now - self.search_s
        recent = np.sort(np.concatenate([series[i] for i in left]))
        pooled = recent[recent >= start]
        if len(pooled) < 2 * self.min_size:
            return None
        period = self._search(pooled, start)
        if period is None:
            return None
        # refine over the whole window: the span sets how sharp a period can be told
        # (an eighth of a cycle of drift over it per step), the search's width how far
        span = max(float(recent[-1] - recent[0]), self.search_s)
        width = period * period / self.search_s
        points = min(513, math.ceil(16.0 * span / self.search_s) + 1)
        fine = np.linspace(period - width, period + width, points)
        power = rayleigh_power(recent, fine)
        k = int(np.argmax(power))
        period = float(fine[k])
        # every candidate's onsets flat, with its index: one pass per period scored
        times = np.concatenate([series[i] for i in left])
        owner = np.repeat(np.arange(len(left)), [len(series[i]) for i in left])
        n = np.asarray([len(series[i]) for i in left], dtype=np.float64)
        scores = self._scores(times, owner, n, period)
        # The bar: the score that as many accounts reach by chance as ``false_locks``,
        # read off the same accounts scored at decoy periods no clock ticks at (their
        # own onsets, so their own volume and hours). The normal quantile is a floor:
        # the few onsets of a light account make the tail heavier than the normal's;
        # ``min_score`` another, for a small population whose quantiles are low.
        share = min(0.5, self.false_locks / len(left))
        bar = max(self.min_score, NormalDist().inv_cdf(1.0 - share))
        if self.decoys:
            null = np.concatenate(
                [
                    self._scores(times, owner, n, period * (1.0 + _DECOY_STEP * (j + 1)))
                    for j in range(self.decoys)
                ]
            )
            bar = max(bar, float(np.quantile(null, 1.0 - share)))
        members = [
            accounts[i]
            for i, s in zip(left, scores.tolist(), strict=True)
            if s >= bar and (eligible is None or eligible(accounts[i]))
        ]
        if len(members) < self.min_size:
            return None
        return Clock(period, float(power[k]), sorted(members))

    def _scores(
        self, times: np.ndarray, owner: np.ndarray, n: np.ndarray, period: float
    ) -> np.ndarray:
        """Each account's phase score at ``period``: its onsets' projection on the pooled
        phase of each of the first ``harmonics`` multiples, ~N(0, 1) by chance.

        A scheduler's ticks are narrow peaks in phase, which the harmonics see (the
        first alone reads a narrow peak as a broad one); each harmonic's phase is the
        pooled one, so no account picks its own.
        """
        theta = 2.0 * np.pi * times / period
        total = np.zeros(len(n))
        for h in range(1, self.harmonics + 1):
            a = h * theta
            phi = math.atan2(float(np.sin(a).sum()), float(np.cos(a).sum()))
            total += np.bincount(owner, weights=np.cos(a - phi), minlength=len(n))
        return total / np.sqrt(n * self.harmonics / 2.0)

    def _search(self, pooled: np.ndarray, start: float) -> float | None:
        """The strongest period allowed, from one FFT of the binned pooled onsets."""
        r = self.resolution_s
        n_bins = math.ceil(self.search_s / r) + 1
        counts = np.bincount(((pooled - start) / r).astype(np.int64), minlength=n_bins)
        size = 1 << (3 * n_bins - 1).bit_length()  # zero-padded: periods 3x oversampled
        spectrum = np.fft.rfft(counts.astype(np.float64), n=size)
        power = (spectrum.real**2 + spectrum.imag**2) / len(pooled)
        k = np.arange(len(power), dtype=np.float64)
        with np.errstate(divide="ignore"):
            periods = size * r / k
        allowed = (periods >= self.min_period_s) & (periods <= self.max_period_s)
        # a period within one coherence width of a whole-second divisor of the hour is
        # the wall clock's (cron, "every 5 minutes"), shared by unrelated customers
        width = periods * periods / self.search_s
        for d in _HOUR_DIVISORS:
            allowed &= np.abs(periods - d) > width
        if not allowed.any():
            return None
        power = np.where(allowed, power, 0.0)
        best = int(np.argmax(power))
        if power[best] < self.min_power:
            return None
        # Ticks every P are ticks every P/2 too, so the spectrum also peaks at the
        # clock's fractions; ticks every P/2 cancel out at P. The fundamental is the
        # longest multiple of the peak that keeps at least half its power.
        chosen = best
        for m in range(2, 9):
            at = best / m
            if at < 1:
                break
            near = range(max(1, int(at) - 1), min(len(power), int(at) + 3))
            j = max(near, key=lambda i: power[i])
            if power[j] >= 0.5 * power[best]:
                chosen = j
        return float(periods[chosen])

    # -- state ---------------------------------------------------------------------------

    def to_state(self) -> PhaseState:
        return PhaseState(recent={a: list(t) for a, t in self.recent.items()})

    def load(self, state: PhaseState) -> None:
        self.recent = {a: array("q", t) for a, t in state.recent.items()}


#: whole-second periods that divide an hour: what wall-clock schedules tick at
_HOUR_DIVISORS = tuple(3600.0 / k for k in range(1, 3601) if 3600 % k == 0 and 3600 // k >= 10)


#: decoy periods are the clock's times 1 + 1.3%, 2.6%, ...: far off its peak (a 4-day
#: window resolves 0.1%), close enough to share the time scale of people's habits
_DECOY_STEP = 0.013


def _related(p: float, q: float, search_s: float) -> bool:
    """``p`` is ``q`` or one of its first harmonics, within the search's resolution."""
    for k in (1, 2, 3, 4):
        for a, b in ((p, q * k), (p * k, q)):
            if abs(a - b) <= a * a / search_s:
                return True
    return False


def rayleigh_power(t: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Pooled Rayleigh power of times ``t`` at each period (chance: Exp(1))."""
    out = np.empty(len(periods))
    for i in range(0, len(periods), 32):
        phase = 2.0 * np.pi * t[None, :] / periods[i : i + 32, None]
        c, s = np.cos(phase).sum(1), np.sin(phase).sum(1)
        out[i : i + 32] = (c * c + s * s) / len(t)
    return out
