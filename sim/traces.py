"""Measurements of the traces adversaries leave, computed from generated traffic.

An adversary that leaves no trace makes a meaningless test, one whose trace is a
constant field makes a trivial one. These statistics are how ``tests/test_adversaries.py``
shows each variant's trace is real (it differs from honest accounts of the same volume)
and how docs/adversaries.md quantifies it. They read only what an event carries
(times, prompt text, model, tokens); ground truth is used only to pick which accounts
to compare. They are deliberately group statistics: per account most traces are faint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DAY = 86_400.0


def coactivity_ratio(
    times: Sequence[np.ndarray], start: float, days: float, *, bin_s: float = 60.0
) -> float:
    """How much more often a set of accounts is active in the same ``bin_s`` than chance.

    Counts pairs of requests from *different* accounts that fall in the same bin, over
    the mean of the same count when the accounts' timelines are offset from each other
    by whole days (circularly, every lag of 1..days-1 days). Offsetting by days keeps
    each account's own rhythm and time of day -- people sharing evenings stay aligned --
    and breaks only an alignment that is not tied to the clock of the day, such as a
    common controller's. About 1 for independent accounts; loose synchrony is > 1.
    Computed exactly (cross-correlation at whole-day lags), not by simulation.

    >>> rng = np.random.default_rng(0)
    >>> independent = [np.sort(rng.uniform(0, 3 * DAY, 60)) for _ in range(100)]
    >>> ticks = np.arange(0, 3 * DAY, 431.0)
    >>> driven = [np.sort(rng.choice(ticks, 60) + rng.normal(0, 60, 60)) for _ in range(100)]
    >>> bool(0.9 < coactivity_ratio(independent, 0, 3) < 1.1)
    True
    >>> bool(coactivity_ratio(driven, 0, 3) > 2)
    True
    """
    whole_days = round(days)
    if whole_days < 2 or len(times) < 2 or DAY % bin_s:
        return float("nan")
    per_day = int(DAY // bin_s)
    nbins = whole_days * per_day
    total = np.zeros(nbins, dtype=np.float64)
    own = np.zeros(whole_days, dtype=np.float64)  # each account with itself, per lag
    for t in times:
        rel = (np.asarray(t) - start) % (whole_days * DAY)
        c = np.bincount((rel // bin_s).astype(np.int64), minlength=nbins)[:nbins].astype(float)
        total += c
        own += [float(np.dot(c, np.roll(c, lag * per_day))) for lag in range(whole_days)]
    cross = [
        float(np.dot(total, np.roll(total, lag * per_day))) - own[lag] for lag in range(whole_days)
    ]
    null = float(np.mean(cross[1:]))
    if null > 0:
        return cross[0] / null
    return float("inf") if cross[0] > 0 else float("nan")


def cross_account_collisions(texts: Sequence[np.ndarray]) -> int:
    """Distinct items sent by two or more of the accounts (a shared queue gives ~0).

    >>> cross_account_collisions([np.array([1, 2, 2]), np.array([3, 2]), np.array([4])])
    1
    """
    owners: dict[int, int] = {}
    for t in texts:
        for item in np.unique(t).tolist():
            owners[item] = owners.get(item, 0) + 1
    return sum(1 for n in owners.values() if n >= 2)


def expected_collisions(counts: Sequence[int], pool: int, draws: int = 20, seed: int = 0) -> float:
    """:func:`cross_account_collisions` if each account drew its items independently and
    uniformly from a pool of ``pool`` items (Monte Carlo).

    >>> expected_collisions([100, 100], 1000) > 5
    True
    """
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [
                cross_account_collisions([rng.integers(0, pool, n) for n in counts])
                for _ in range(draws)
            ]
        )
    )


def repeat_share(texts: np.ndarray) -> float:
    """Share of an account's prompts that repeat one it sent before (benchmark reruns).

    >>> round(repeat_share(np.array([1, 2, 3, 1, 2, 4])), 3)
    0.333
    """
    if len(texts) == 0:
        return float("nan")
    return 1.0 - len(np.unique(texts)) / len(texts)


def daily_counts(ts: np.ndarray, start: float, days: int) -> np.ndarray:
    """Requests per whole day of the scenario (UTC days from ``start``)."""
    day = ((np.asarray(ts) - start) // DAY).astype(np.int64)
    return np.bincount(day[(day >= 0) & (day < days)], minlength=days)[:days]


def daily_cv(ts: np.ndarray, start: float, days: int) -> float:
    """Coefficient of variation of daily counts over days with any activity.

    A controller's quota gives a near-constant count (CV ~ 0.03); a person's days vary.

    >>> daily_cv(np.array([1.0, 2.0, DAY + 1, DAY + 2]), 0.0, 2)
    0.0
    """
    c = daily_counts(ts, start, days)
    c = c[c > 0]
    return float(np.std(c) / np.mean(c)) if len(c) >= 2 else float("nan")


def shift_ratio(values: np.ndarray, ts: np.ndarray, at: float) -> float:
    """Mean of ``values`` after ``at`` over the mean before (a change of regime).

    >>> shift_ratio(np.array([1.0, 1.0, 4.0, 4.0]), np.array([0.0, 1.0, 2.0, 3.0]), 1.5)
    4.0
    """
    before, after = values[ts < at], values[ts >= at]
    if len(before) == 0 or len(after) == 0 or before.mean() == 0:
        return float("nan")
    return float(after.mean() / before.mean())


def spread_hours(moments: Sequence[float]) -> float:
    """Standard deviation, in hours, of a set of moments (e.g. when accounts adopted).

    >>> spread_hours([0.0, 3600.0])
    0.5
    """
    return float(np.std(np.asarray(moments, dtype=np.float64)) / 3600.0)
