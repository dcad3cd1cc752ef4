"""Co-activity fleets: accounts that are active together more often than chance, as a group.

A fleet on residential addresses with a card, an address and an SDK agent per account,
varied wording and ~15-20 requests a day shares no value with its siblings and fills
no campaign window (``synchrony.py``: 40-60 accounts add ~2 onsets to a bin). What its
controller cannot hide is that its accounts wake in the same windows: any two of them
start a burst in the same 10-minute bin only a few times over days, but far more often
than two people of that volume do, and across the whole fleet those weak ties add up
to a *dense subgraph* of the co-activity graph (SynchroTrap's pairwise similarity,
FRAUDAR's dense-block view of it). The steps:

1. *bins*: per ``bin_s`` bin, the distinct accounts with a burst onset (one id per
   session, as for campaign windows). At bin close every pair of its members gains
   ``1 / log(column_c + c)`` for a bin of ``c`` members (FRAUDAR's column weighting:
   a busy bin, when everyone is awake, says less about any one pair).
2. *bounded accumulation*: each account keeps the bins of its last ``max_onsets + 1``
   onsets, and each bin its size, for ``window_s``. Only *candidates* count: accounts
   with ``min_onsets`` to ``max_onsets`` onsets in the window, the low per-account
   volume a fleet runs at (a busy account is awake with everyone, and its own
   detectors see its volume). The pair weights are built from these lists at
   extraction time, not kept.
3. *chance*: were onsets placed in bins independently, in proportion to how busy each
   bin was, two accounts with ``n_a`` and ``n_b`` onsets would share
   ``n_a · n_b · Σ_b p_b² w_b`` weighted bins. Every pair of a group is charged
   ``lift`` times that, including the pairs that never met, so a group of strangers has
   a negative excess and what chance and the hours of the day explain is discounted.
4. *extraction*, every ``interval_s``: greedy peeling (Charikar's 2-approximation of the
   densest subgraph) on the chance-corrected graph: drop the account contributing the
   least excess, keep the set with the highest excess per member; the densest group
   found is removed and the peeling repeated, up to ``max_groups`` times, while the
   excess per member stays at least ``min_density``. Groups of ``min_size`` or more
   come out; the stage gives each a shared ``f:`` key once it passes the extraction
   gate.

Honest groups co-act too (a lecture hour, a hackathon, a company's office hours): they
come out as groups, and the stage's extraction gate keeps them unalerted.

Per onset the work is one set insertion; at bin close, one append per member; the
pairs (at most ``max_bin_members`` members of a bin) and the peeling run on the
cadence over the candidates' lists. State is bounded: per account at most
``max_onsets + 1`` bin numbers, per bin of the window one count; it goes through
:class:`~distillguard.detectors.state.FleetState`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.linkage.onset_bins import OnsetBins
from distillguard.detectors.state import FleetState

#: a bin records every account with an onset: its size is the column weight
_EVERY_ACCOUNT = 1 << 62


class CoActivityFleets(OnsetBins):
    """Streaming dense-subgraph finder over weak co-activity: ``onset`` hot, ``groups`` periodic.

    Examples
    --------
    Sixty accounts with a few random onsets a day, and twelve woken together by one
    controller every few hours (each sibling in about half of the wake-ups, at a random
    minute of a 20-minute window): the twelve, and only they, form the group.

    >>> import random
    >>> rng = random.Random(6)
    >>> fl = CoActivityFleets(bin_s=600, column_c=5.0, lift=2.0, min_onsets=3,
    ...                       max_onsets=60, max_bin_members=64, window_s=4 * 86_400,
    ...                       min_size=6, min_density=1.0, max_groups=4)
    >>> events = [(rng.uniform(0, 3 * 86_400), f"u{i}") for i in range(60) for _ in range(10)]
    >>> wakes = [3_000 + 11_000 * k for k in range(22)]
    >>> events += [(t + rng.uniform(0, 1_200), f"f{i:02d}") for t in wakes
    ...            for i in range(12) if rng.random() < 0.5]
    >>> for ts, acct in sorted(events):
    ...     fl.onset(acct, ts)
    >>> fl.groups(3 * 86_400) == [sorted(f"f{i:02d}" for i in range(12))]
    True
    """

    def __init__(
        self,
        *,
        bin_s: float,
        column_c: float,
        lift: float,
        min_onsets: int,
        max_onsets: int,
        max_bin_members: int,
        window_s: float,
        min_size: int,
        min_density: float,
        max_groups: int,
    ) -> None:
        self._open_bins(bin_s, _EVERY_ACCOUNT)
        self.column_c = column_c
        self.lift = lift
        self.min_onsets = max(1, min_onsets)
        self.max_onsets = max(self.min_onsets, max_onsets)
        self.max_bin_members = max(2, max_bin_members)
        self.window_s = window_s
        self.min_size = max(2, min_size)
        self.min_density = min_density
        self.max_groups = max_groups
        #: closed bin -> accounts with an onset in it (all of them: the column weight)
        self.counts: dict[int, int] = {}
        #: account -> its last ``max_onsets + 1`` onset bins, oldest first
        self.recent: dict[str, list[int]] = {}

    @classmethod
    def from_config(cls, cfg: LinkageConfig) -> CoActivityFleets:
        """The ``fleet_*`` parameters of the linkage settings."""
        return cls(
            bin_s=cfg.fleet_bin_s,
            column_c=cfg.fleet_column_c,
            lift=cfg.fleet_lift,
            min_onsets=cfg.fleet_min_onsets,
            max_onsets=cfg.fleet_max_onsets,
            max_bin_members=cfg.fleet_max_bin_members,
            window_s=cfg.fleet_window_s,
            min_size=cfg.fleet_min_size,
            min_density=cfg.fleet_min_density,
            max_groups=cfg.fleet_max_groups,
        )

    # -- a bin closes (the hot path is OnsetBins.onset) -------------------------------

    def _close(self, next_bin: int) -> None:
        b = self.bin
        assert b is not None
        if self.members:
            self.counts[b] = len(self.members)
            recent, keep = self.recent, self.max_onsets + 1
            for aid in self.members:
                bins = recent.get(aid)
                if bins is None:
                    recent[aid] = [b]
                else:
                    bins.append(b)
                    if len(bins) > keep:
                        del bins[0]
        self._start(next_bin)

    # -- cadence -----------------------------------------------------------------------

    def groups(self, now: float, eligible: Callable[[str], bool] | None = None) -> list[list[str]]:
        """Dense co-activity groups of at least ``min_size`` accounts, as sorted lists.

        Bins older than ``window_s`` are dropped first, and accounts left without any.
        ``eligible`` narrows the candidates the peeling sees (the stage passes its
        extraction gate): the groups come out densest first and at most ``max_groups``
        of them, and a lecture hour or an evaluation vendor's nightly run is denser than
        a fleet that spreads its accounts over the controller's windows. Judged after
        the fact, those honest groups used up every slot and absorbed the fleet's members
        (``adaptive`` 103: the fleet never came out). Chance is still charged from every
        account's onsets, so narrowing the candidates makes no group look denser.
        """
        if not math.isfinite(now):
            return []
        oldest = int((now - self.window_s) // self.bin_s)
        counts = self.counts
        for b in [b for b in counts if b < oldest]:
            del counts[b]
        nodes: list[str] = []
        for aid in list(self.recent):
            bins = self.recent[aid]
            while bins and bins[0] < oldest:
                del bins[0]
            if not bins:
                del self.recent[aid]
            elif self.min_onsets <= len(bins) <= self.max_onsets:
                nodes.append(aid)  # a full list means more onsets than a candidate has
        if eligible is not None:
            nodes = [aid for aid in nodes if eligible(aid)]
        if len(nodes) < self.min_size or not counts:
            return []
        nodes.sort()
        n = len(nodes)
        by_bin: dict[int, list[int]] = {}
        for i, aid in enumerate(nodes):
            for b in self.recent[aid]:
                by_bin.setdefault(b, []).append(i)
        rows, cols, weights = [], [], []
        column = self.column_c
        for b, ids in by_bin.items():
            if len(ids) < 2:
                continue
            m = np.asarray(ids[: self.max_bin_members], dtype=np.int64)
            iu, ju = np.triu_indices(len(m), 1)
            rows.append(m[iu])
            cols.append(m[ju])
            weights.append(np.full(len(iu), 1.0 / math.log(column + counts.get(b, len(ids)))))
        if not rows:
            return []
        r0, c0, w0 = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        pair, inverse = np.unique(r0 * n + c0, return_inverse=True)
        tie = np.bincount(inverse, weights=w0)
        r, c = pair // n, pair % n
        # both directions, sorted by row: a CSR adjacency for the peeling
        rr, cc, ww = np.concatenate([r, c]), np.concatenate([c, r]), np.concatenate([tie, tie])
        order = np.argsort(rr, kind="stable")
        rr, cc, ww = rr[order], cc[order], ww[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rr, minlength=n), out=indptr[1:])
        c_b = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        total = float(c_b.sum())
        square = float((c_b * c_b / np.log(column + c_b)).sum())
        vol = np.array([len(self.recent[a]) for a in nodes], dtype=np.float64)
        charge = self.lift * square / (total * total)
        free = np.ones(n, dtype=bool)
        found: list[list[str]] = []
        for _ in range(self.max_groups):
            best, members = _peel(free, rr, cc, ww, indptr, vol, charge, self.min_size)
            if members is None or best < self.min_density:
                break
            found.append(sorted(nodes[i] for i in members))
            free[members] = False
        return sorted(found, key=lambda m: m[0])

    def forget(self, account_id: str) -> None:
        """An idle account the stage dropped."""
        self.recent.pop(account_id, None)

    # -- state -------------------------------------------------------------------------

    def to_state(self) -> FleetState:
        return FleetState(
            bin=self.bin,
            members=list(self.members),
            counts=dict(self.counts),
            recent={a: list(b) for a, b in self.recent.items()},
        )

    def load(self, state: FleetState) -> None:
        self._load_bin(state.bin, state.members)
        self.counts = dict(state.counts)
        self.recent = {a: list(b) for a, b in state.recent.items()}


def _peel(
    free: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    data: np.ndarray,
    indptr: np.ndarray,
    vol: np.ndarray,
    charge: float,
    min_size: int,
) -> tuple[float, np.ndarray | None]:
    """Greedy peeling of the free nodes: the set with the highest excess per member.

    A node's contribution is its weighted ties to the others left minus ``charge`` times
    its onsets times theirs (the chance term of every pair, met or not), so the charge
    for a set is ``charge · ((Σn)² - Σn²) / 2`` and needs no pair enumeration.
    """
    alive = free.copy()
    pos = np.bincount(rows, weights=data * alive[cols], minlength=len(free))
    size = int(alive.sum())
    if size < min_size:
        return -math.inf, None
    vol_left = float(vol[alive].sum())
    tied = float(pos[alive].sum()) / 2.0
    squares = float((vol[alive] ** 2).sum())
    best, best_at = -math.inf, -1
    removed: list[int] = []
    while size >= min_size:
        f = (tied - charge * (vol_left * vol_left - squares) / 2.0) / size
        if f > best:
            best, best_at = f, len(removed)
        contrib = pos - charge * vol * (vol_left - vol)
        contrib[~alive] = np.inf
        v = int(np.argmin(contrib))
        tied -= float(pos[v])
        vol_left -= float(vol[v])
        squares -= float(vol[v] ** 2)
        alive[v] = False
        size -= 1
        removed.append(v)
        s, e = indptr[v], indptr[v + 1]
        pos[cols[s:e]] -= data[s:e]
    if best_at < 0:
        return -math.inf, None
    members = free.copy()
    members[removed[:best_at]] = False
    return best, np.flatnonzero(members)
