"""Campaign windows: a fleet driven by one controller's clock, seen as a group.

SynchroTrap (Cao et al., CCS 2014) catches accounts that act in loose synchrony: it
records each account's actions in time windows, compares pairs with a tolerance
window, discounts what chance and volume explain, and clusters the pairs that stay
similar over a sustained period. A swarm of thousands of accounts at 3-10 requests a
day defeats the pairwise step (two of its accounts share less than 1.5 two-minute
bins over a week), so this module keeps the idea but asks the question of the group:

1. *campaign windows*: in each ``bin_s`` bin, count the distinct accounts that start
   a burst (an onset, so a busy backend counts once per session, not per request).
   The baseline is the median of the previous ``baseline_bins`` bins, which follows
   the time of day yet ignores the spikes themselves (a scheduler ticking every few
   minutes fills well under half of the bins). A bin whose count has a Poisson tail
   below ``10**-excess_surprise`` (and exceeds the baseline by ``excess_min``) is a
   campaign window.
2. *per-account concentration, chance-corrected for its own volume and hours*: each
   onset of an account adds to its expected hits the share of bins *at that hour of
   the day* that were campaign windows (smoothed towards the overall share), since a
   fleet runs in its operator's busy hours and people active at those hours land in
   its windows more often than the overall share says. An account whose onsets hit
   campaign windows far more often than that expectation (times ``chance_factor``)
   is synchronised with *someone*, if those hits are also a good share of its onsets
   (``min_hit_share``: a controller's account lives in the windows, a person only
   passes through some). The binomial tail of its hits given its onsets is the test,
   so a busy honest account, which lands in many windows because it is active a lot,
   is judged against its many onsets and stays unremarkable.
3. *groups*: synchronised accounts that met in the same campaign windows are joined
   (union-find over the recent windows); a group of at least ``min_size`` becomes one
   shared ``z:`` evidence key in the stage, which links its members like a cohort.

Honest groups are synchronised too (a lecture hour, a nightly cron, a kickoff); they
may form a group and a cluster, and the stage's extraction gate keeps them unalerted:
coordination alone is not distillation.

State is bounded: per account two counters and its last ``max_windows`` campaign
windows; per window at most ``max_participants`` ids, for ``window_ttl_s``. It is
pure (no I/O) and goes through :class:`~distillguard.detectors.state.SynchronyState`.
"""

from __future__ import annotations

import math
from collections import deque

from distillguard.detectors.linkage.components import components
from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.linkage.graph import poisson_tail
from distillguard.detectors.linkage.onset_bins import OnsetBins
from distillguard.detectors.state import SynchronyState

_HOURS = 24
#: pseudo-count (bins) pulling an hour's campaign-window share towards the overall share
_HOUR_PRIOR = 30.0


def binomial_surprise(hits: int, trials: int, p: float) -> float:
    """-log10 P(X >= hits) for X ~ Binomial(trials, p): how unlikely chance makes it.

    >>> round(binomial_surprise(10, 14, 0.36), 2), binomial_surprise(0, 5, 0.1)
    (2.12, 0.0)
    >>> binomial_surprise(3, 30, 0.1) < 0.5  # a busy account at the chance rate
    True
    """
    if hits <= 0 or trials <= 0 or p >= 1.0:
        return 0.0
    if p <= 0.0 or hits > trials:
        return 300.0
    lp, lq = math.log(p), math.log1p(-p)
    log_c = math.lgamma(trials + 1) - math.lgamma(hits + 1) - math.lgamma(trials - hits + 1)
    term = first = log_c + hits * lp + (trials - hits) * lq
    total = 1.0  # the tail's terms relative to the first one
    for j in range(hits, trials):
        term += math.log(trials - j) - math.log(j + 1) + lp - lq
        if term < first - 40:
            break
        total += math.exp(term - first)
    return min(300.0, max(0.0, -(first + math.log(total)) / math.log(10)))


class CampaignWindows(OnsetBins):
    """Streaming campaign-window detector: ``onset`` per burst onset, ``groups`` on a cadence.

    Examples
    --------
    Thirty quiet accounts that start a few bursts a day at random never make a
    campaign window; add twelve that a controller wakes together every ~35 minutes
    and they, and only they, come out as one group:

    >>> import random
    >>> rng = random.Random(3)
    >>> cw = CampaignWindows(bin_s=120, baseline_bins=30, min_history=10,
    ...                      excess_surprise=3.0, excess_min=3, max_participants=512,
    ...                      chance_factor=1.3, flag_surprise=3.0, flag_min_hits=5,
    ...                      min_hit_share=0.3, max_windows=16, window_ttl_s=3 * 86_400)
    >>> events = [(rng.uniform(0, 2 * 86_400), f"u{i}") for i in range(30) for _ in range(12)]
    >>> ticks = [2_000 + 2_100 * k for k in range(80)]
    >>> events += [(t + rng.uniform(0, 30), f"f{i}") for t in ticks for i in range(12)
    ...            if rng.random() < 0.6]
    >>> for ts, acct in sorted(events):
    ...     cw.onset(acct, ts)
    >>> [group == sorted(f"f{i}" for i in range(12)) for group in cw.groups(2 * 86_400, 6)]
    [True]
    """

    def __init__(
        self,
        *,
        bin_s: float,
        baseline_bins: int,
        min_history: int,
        excess_surprise: float,
        excess_min: int,
        max_participants: int,
        chance_factor: float,
        flag_surprise: float,
        flag_min_hits: int,
        min_hit_share: float,
        max_windows: int,
        window_ttl_s: float,
    ) -> None:
        self._open_bins(bin_s, max_participants)
        self.baseline_bins = max(1, baseline_bins)
        self.min_history = min_history
        self.excess_surprise = excess_surprise
        self.excess_min = excess_min
        self.chance_factor = chance_factor
        self.flag_surprise = flag_surprise
        self.flag_min_hits = flag_min_hits
        self.min_hit_share = min_hit_share
        self.max_windows = max_windows
        self.window_ttl_s = window_ttl_s
        self.history: deque[int] = deque(maxlen=self.baseline_bins)
        self.bins_judged = 0
        self.excess_bins = 0
        #: judged bins and campaign windows per hour of the day (UTC)
        self.hour_judged = [0] * _HOURS
        self.hour_excess = [0] * _HOURS
        #: account -> [onsets in judged bins, onsets in campaign windows, *last windows]
        self.accounts: dict[str, list[int]] = {}
        #: account -> campaign windows its onsets would hit by chance, at their hours
        self.expected: dict[str, float] = {}
        #: campaign window (bin index) -> its participants, oldest window first
        self.windows: dict[int, list[str]] = {}

    @classmethod
    def from_config(cls, cfg: LinkageConfig) -> CampaignWindows:
        """The ``campaign_*`` parameters of the linkage settings."""
        return cls(
            bin_s=cfg.campaign_bin_s,
            baseline_bins=cfg.campaign_baseline_bins,
            min_history=cfg.campaign_min_history,
            excess_surprise=cfg.campaign_excess_surprise,
            excess_min=cfg.campaign_excess_min,
            max_participants=cfg.campaign_max_participants,
            chance_factor=cfg.campaign_chance_factor,
            flag_surprise=cfg.campaign_flag_surprise,
            flag_min_hits=cfg.campaign_min_hits,
            min_hit_share=cfg.campaign_min_hit_share,
            max_windows=cfg.campaign_max_windows,
            window_ttl_s=cfg.campaign_window_ttl_s,
        )

    # -- a bin closes (the hot path is OnsetBins.onset) -------------------------------

    def _close(self, next_bin: int) -> None:
        assert self.bin is not None
        c = len(self.members)
        history = self.history
        if len(history) >= self.min_history:
            mu = max(1.0, sorted(history)[len(history) // 2])
            self.bins_judged += 1
            hour = self._hour(self.bin)
            p = self.hour_share(hour)  # before this bin counts: chance is judged a priori
            self.hour_judged[hour] += 1
            excess = (
                c >= mu + self.excess_min
                and -math.log10(max(poisson_tail(c, mu), 1e-300)) >= self.excess_surprise
            )
            if excess:
                self.excess_bins += 1
                self.hour_excess[hour] += 1
                self.windows[self.bin] = list(self.members)
            accounts, expected = self.accounts, self.expected
            for aid in self.members:
                st = accounts.get(aid)
                if st is None:
                    st = accounts[aid] = [0, 0]
                st[0] += 1
                expected[aid] = expected.get(aid, 0.0) + p
                if excess:
                    st[1] += 1
                    st.append(self.bin)
                    if len(st) > 2 + self.max_windows:
                        del st[2]
        history.append(c)
        # empty bins in between: counted as judged quiet bins, and as zeros of the baseline
        gap = next_bin - self.bin - 1
        if gap > 0:
            if len(history) >= self.min_history:
                self.bins_judged += gap
                for b in range(
                    self.bin + 1, self.bin + 1 + min(gap, int(7 * 86_400 // self.bin_s))
                ):
                    self.hour_judged[self._hour(b)] += 1
            for _ in range(min(gap, self.baseline_bins)):
                history.append(0)
        self._start(next_bin)

    # -- cadence -----------------------------------------------------------------------

    def _hour(self, b: int) -> int:
        return int(b * self.bin_s // 3600) % _HOURS

    def hour_share(self, hour: int) -> float:
        """Share of judged bins at this hour that were campaign windows (smoothed)."""
        overall = self.excess_bins / self.bins_judged if self.bins_judged else 0.0
        return (self.hour_excess[hour] + _HOUR_PRIOR * overall) / (
            self.hour_judged[hour] + _HOUR_PRIOR
        )

    def surprise(self, account_id: str) -> float:
        """-log10 of the chance that the account's onsets hit campaign windows this often."""
        st = self.accounts.get(account_id)
        if st is None or st[1] < self.flag_min_hits:
            return 0.0
        if st[1] < self.min_hit_share * st[0]:
            return 0.0
        p = self.chance_factor * self.expected.get(account_id, 0.0) / st[0]
        return binomial_surprise(st[1], st[0], min(p, 0.95))

    def synchronised(self) -> set[str]:
        """Accounts whose onsets concentrate in campaign windows beyond chance."""
        least = self.flag_surprise
        return {aid for aid in self.accounts if self.surprise(aid) >= least}

    def groups(self, now: float, min_size: int) -> list[list[str]]:
        """Synchronised accounts that met in recent campaign windows, as sorted groups.

        Old windows (``window_ttl_s``) are dropped first. Two synchronised accounts in
        one window are joined; a window contributes only if it holds at least two.
        """
        if not math.isfinite(now):
            return []
        oldest = int((now - self.window_ttl_s) // self.bin_s)
        for b in [b for b in self.windows if b < oldest]:
            del self.windows[b]
        flagged = self.synchronised()
        if len(flagged) < min_size:
            return []
        nodes: dict[str, None] = {}
        edges: list[tuple[str, str]] = []
        for b in sorted(self.windows):
            met = [a for a in self.windows[b] if a in flagged]
            if len(met) < 2:
                continue
            nodes.update(dict.fromkeys(met))
            edges += [(met[0], a) for a in met[1:]]
        comps = components(nodes, edges)
        return sorted((sorted(m) for m in comps if len(m) >= min_size), key=lambda m: m[0])

    def forget(self, account_id: str) -> None:
        """An idle account the stage dropped (its ids in old windows expire with them)."""
        self.accounts.pop(account_id, None)
        self.expected.pop(account_id, None)

    # -- state -------------------------------------------------------------------------

    def to_state(self) -> SynchronyState:
        return SynchronyState(
            bin=self.bin,
            members=list(self.members),
            history=list(self.history),
            bins_judged=self.bins_judged,
            excess_bins=self.excess_bins,
            hour_judged=list(self.hour_judged),
            hour_excess=list(self.hour_excess),
            accounts={a: list(st) for a, st in self.accounts.items()},
            expected=dict(self.expected),
            windows={b: list(m) for b, m in self.windows.items()},
        )

    def load(self, state: SynchronyState) -> None:
        self._load_bin(state.bin, state.members)
        self.history = deque(state.history, maxlen=self.baseline_bins)
        self.bins_judged, self.excess_bins = state.bins_judged, state.excess_bins
        self.hour_judged = (list(state.hour_judged) + [0] * _HOURS)[:_HOURS]
        self.hour_excess = (list(state.hour_excess) + [0] * _HOURS)[:_HOURS]
        self.expected = dict(state.expected)
        self.accounts = {a: list(st) for a, st in state.accounts.items()}
        self.windows = {b: list(m) for b, m in sorted(state.windows.items())}
