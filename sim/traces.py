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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from distillguard.sim.engine import Traffic

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


def item_dispersion(items: np.ndarray, rows: np.ndarray) -> float:
    """Variance over mean of how often each row of a source was sent (pooled campaign).

    A dispatcher that sends every row once per sweep keeps the counts within one of each
    other (dispersion well below 1, falling as sweeps accumulate); independent draws give
    Poisson counts (about 1). Holds however many times the source was swept.

    >>> rows = np.arange(1000)
    >>> queue = np.concatenate([np.random.default_rng(0).permutation(rows) for _ in range(3)])
    >>> item_dispersion(queue, rows)
    0.0
    >>> drawn = np.random.default_rng(0).integers(0, 1000, 3000)
    >>> bool(0.8 < item_dispersion(drawn, rows) < 1.2)
    True
    """
    lo = int(rows.min())
    counts = np.bincount(np.asarray(items, dtype=np.int64) - lo, minlength=int(rows.max()) - lo + 1)
    counts = counts[np.asarray(rows, dtype=np.int64) - lo]
    mean = float(counts.mean())
    return float(counts.var() / mean) if mean > 0 else float("nan")


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


def gap_runs(ts: np.ndarray, *, step: float = 0.05, length: int = 4) -> set[tuple[int, ...]]:
    """Runs of ``length`` consecutive gaps between an account's requests, each gap on a
    log scale of ``step`` (gaps under 2 s break a run): what a replayed recording of one
    person's timing repeats across accounts and people's fresh gaps do not.

    >>> rec = np.cumsum([0, 30, 75, 12, 240, 41, 9])
    >>> sorted(gap_runs(rec)) == sorted(gap_runs(rec + 5_000.0)), len(gap_runs(rec))
    (True, 3)
    """
    gaps = np.diff(np.sort(np.asarray(ts, dtype=np.float64)))
    ok = gaps >= 2.0
    bins = np.floor(np.log(np.maximum(gaps, 1e-9)) / np.log1p(step)).astype(np.int64)
    return {
        tuple(int(b) for b in bins[i : i + length])
        for i in range(len(bins) - length + 1)
        if ok[i : i + length].all()
    }


class PerAccount:
    """A generated scenario's columns split per account, accounts grouped by archetype."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        order = np.argsort(traffic.acct, kind="stable")
        bounds = np.searchsorted(traffic.acct[order], np.arange(len(traffic.accounts) + 1))
        self._rows = [order[bounds[i] : bounds[i + 1]] for i in range(len(traffic.accounts))]
        self.by_archetype: dict[str, list[int]] = {}
        for i, a in enumerate(traffic.accounts):
            self.by_archetype.setdefault(a.archetype, []).append(i)

    def col(self, name: str, i: int) -> np.ndarray:
        return self.traffic.columns[name][self._rows[i]]

    def prompt_ids(self, i: int) -> np.ndarray:
        """One integer per distinct prompt text (corpus item and wrapper together)."""
        return self.col("text", i).astype(np.int64) * 65_536 + self.col("wrap", i)

    def machine(self, i: int) -> np.ndarray:
        """Mask of the account's prompts from the machine-generated instruction sets."""
        text = self.col("text", i)
        mask = np.zeros(len(text), dtype=bool)
        for name in MACHINE_CORPORA:
            lo, hi = self.traffic.ctx.ranges[name]
            mask |= (text >= lo) & (text < hi)
        return mask

    def closest_in_volume(self, idx: Sequence[int], pool: Sequence[int]) -> list[int]:
        """As many accounts of ``pool`` as ``idx`` has, closest to its median volume."""
        want = float(np.median([len(self._rows[i]) for i in idx]))
        return sorted(pool, key=lambda i: (abs(len(self._rows[i]) - want), i))[: len(idx)]


MACHINE_CORPORA = ("codegen", "toolformer")
BACKGROUND = ("hobbyist", "coding_assistant", "campus_nat", "corporate_nat", "research_group")


def trace_table(traffic: Traffic) -> list[dict[str, object]]:
    """Each attacker archetype's traces next to volume-matched background accounts'.

    ``sync``: :func:`coactivity_ratio` (2-minute bins) of the variant's accounts / of as
    many background accounts of like volume; ``collisions``: instruction-set items sent
    by two of its accounts, observed / expected if each drew independently (meaningful
    within one sweep); ``sweeps``: items sent over the source's size; ``dispersion``:
    :func:`item_dispersion` (independent draws: ~1); ``repeat``: median
    :func:`repeat_share` (exact prompts); ``daily_cv``: median :func:`daily_cv`.
    """
    view = PerAccount(traffic)
    ctx = traffic.ctx
    days = ctx.scenario.days
    pool = [i for a in BACKGROUND for i in view.by_archetype.get(a, [])]
    rows: list[dict[str, object]] = []
    source = np.concatenate([np.arange(*ctx.ranges[name]) for name in MACHINE_CORPORA])
    size = len(source)
    for arch, idx in sorted(view.by_archetype.items()):
        if traffic.accounts[idx[0]].label != "distiller":
            continue
        times = [view.col("ts", i) for i in idx]
        control = [view.col("ts", i) for i in view.closest_in_volume(idx, pool)]
        items = [view.col("text", i)[view.machine(i)] for i in idx]
        rows.append(
            {
                "variant": arch,
                "accounts": len(idx),
                "per_day": float(np.median([len(t) for t in times]) / days),
                "sync": coactivity_ratio(times, ctx.start, days, bin_s=120),
                "sync_background": coactivity_ratio(control, ctx.start, days, bin_s=120),
                "collisions": cross_account_collisions(items),
                "collisions_expected": expected_collisions([len(x) for x in items], size),
                "sweeps": sum(len(x) for x in items) / size,
                "dispersion": item_dispersion(np.concatenate(items), source),
                "repeat": float(np.median([repeat_share(view.prompt_ids(i)) for i in idx])),
                "daily_cv": float(np.nanmedian([daily_cv(t, ctx.start, int(days)) for t in times])),
            }
        )
    return rows
