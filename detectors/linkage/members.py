"""The cluster stage's account side: what the account stage said of each account.

In a split topology the linkage stage runs without the account detectors beside it.
What it asks of members while scoring a cluster (risk, extraction and setting
scores) arrives in the hand-off records (:mod:`.handoff`) whenever the account stage
rescored an account; this table keeps the latest of each, and each account's last
request times for the cluster timeline. It is driven as the account pipeline of a
:class:`~distillguard.detectors.linkage.LinkedPipeline`, so the cluster stage is the
single-process composition with this table in place of the detectors.

Everything lives in the shared checkpoint: a score carried by one partition's record
can be another partition's account (a label's sweep rescored it), so per-partition
account state could not restore it consistently.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

from distillguard.clock import EventClock
from distillguard.detectors import request_times as times_ring
from distillguard.detectors.pipeline import BatchOutput
from distillguard.detectors.state import MembersState
from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Label


class MemberTable:
    """Latest member scores and request times, fed by hand-off records.

    Parameters
    ----------
    judges
        Whether the account stage judges extraction (``member_judges`` found rules that
        see it); when False the linked pipeline asks nothing, as in one process.
    judges_setting
        Whether it also scores shared client settings.
    times_kept
        Request times kept per account (``detectors.request_times_kept``).
    idle_evict_s
        An account idle this long (by the stage's clock) is let go, as the account
        pipeline lets it go (``detectors.idle_evict_s``): the table stays bounded by
        the accounts active lately, not by every account ever seen.

    Examples
    --------
    >>> from distillguard.detectors.linkage.handoff import HandoffEvent, MemberScore
    >>> t = MemberTable(judges=True, judges_setting=False, times_kept=4)
    >>> e = HandoffEvent(event_id="e", ts=100.0, account_id="a", model="m", input_tokens=1,
    ...                  output_tokens=1, status=200, scores=[MemberScore("a", 0.5, 2.0, 0.0)])
    >>> _ = t.process(e)
    >>> t.risk("a").risk, t.extraction("a"), t.request_times("a"), t.risk("b").risk
    (0.5, 2.0, [100], 0.0)
    """

    def __init__(
        self,
        *,
        judges: bool,
        judges_setting: bool,
        times_kept: int,
        idle_evict_s: float = math.inf,
    ) -> None:
        self.clock = EventClock()
        self.idle_evict_s = idle_evict_s
        self._events = 0
        self.judges = judges
        self.judges_setting = judges_setting
        self._kept = times_kept
        self._scores: dict[str, tuple[float, float, float]] = {}
        self._requests: dict[str, int] = {}
        self._times: dict[str, array[int]] = {}
        self._cursor: dict[str, int] = {}

    def process(self, event: RequestEvent) -> bool:
        self.clock.observe(event.ts)
        aid = event.account_id
        self._requests[aid] = self._requests.get(aid, 0) + 1
        ring = self._times.get(aid)
        if ring is None:
            ring = self._times[aid] = times_ring.new_ring()
        self._cursor[aid] = times_ring.record(ring, self._cursor.get(aid, 0), event.ts, self._kept)
        self._events += 1
        if self._events % _SWEEP_EVERY == 0:
            self.evict_idle()
        scores = self._scores
        for s in getattr(event, "scores", ()):
            if s.risk or s.extraction or s.setting:
                scores[s.account_id] = (s.risk, s.extraction, s.setting)
            else:
                scores.pop(s.account_id, None)  # forgotten by the account stage
        return False

    def evict_idle(self) -> int:
        """Let go of accounts whose latest request is ``idle_evict_s`` behind the clock."""
        horizon = self.clock.now - self.idle_evict_s
        if not math.isfinite(horizon):
            return 0
        times, cursor = self._times, self._cursor
        idle = [a for a, r in times.items() if r and _latest(r, cursor.get(a, 0)) < horizon]
        for a in idle:
            del self._times[a]
            self._cursor.pop(a, None)
            self._requests.pop(a, None)
            self._scores.pop(a, None)
        return len(idle)

    def drain(self) -> BatchOutput:
        """Nothing of its own: the account stage reports accounts' risks."""
        return BatchOutput()

    def risk(self, account_id: str) -> AccountRisk:
        s = self._scores.get(account_id)
        return AccountRisk(account_id=account_id, risk=s[0] if s else 0.0)

    def extraction(self, account_id: str) -> float:
        s = self._scores.get(account_id)
        return s[1] if s else 0.0

    def setting(self, account_id: str) -> float:
        s = self._scores.get(account_id)
        return s[2] if s else 0.0

    def requests_made(self, account_id: str) -> int:
        return self._requests.get(account_id, 0)

    def request_times(self, account_id: str) -> list[int]:
        ring = self._times.get(account_id)
        return [] if ring is None else times_ring.in_order(ring, self._cursor.get(account_id, 0))

    def learn_label(self, label: Label) -> None:
        """The account stage learns labels; the links learn them in the linked pipeline."""

    def accounts(self) -> list[str]:
        return list(self._requests)

    # -- checkpoints: all shared (see the module docstring) --------------------------------

    def to_state(self) -> MembersState:
        return MembersState(
            scores={a: list(s) for a, s in self._scores.items()},
            requests=dict(self._requests),
            times={
                a: times_ring.to_bytes(ring, self._cursor.get(a, 0))
                for a, ring in self._times.items()
            },
        )

    def restore_state(self, state: MembersState | None) -> None:
        state = state or MembersState()
        scores = {}
        for a, s in state.scores.items():
            if len(s) != 3:
                raise ValueError(f"member score of {a!r} has {len(s)} values, not 3")
            scores[a] = (s[0], s[1], s[2])
        times = {a: times_ring.from_bytes(b, self._kept) for a, b in state.times.items()}
        self._scores = scores
        self._requests = dict(state.requests)
        self._times = times
        self._cursor = {}

    def snapshot_shared(self) -> bytes:
        return b""  # the linked pipeline checkpoints the table (``to_state``)

    def restore(self, shared: bytes) -> None:
        """Restored by the linked pipeline (``restore_state``)."""

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        return {}

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        """No per-account state."""

    def forget(self, account_ids: Iterable[str]) -> None:
        """Kept: the table is shared state, rolled back with the shared checkpoint."""


#: events between sweeps of idle accounts (as the account pipeline's)
_SWEEP_EVERY = 65_536


def _latest(ring: array[int], cursor: int) -> int:
    """The latest request time a ring holds (its last write)."""
    return ring[cursor - 1] if cursor else ring[-1]
