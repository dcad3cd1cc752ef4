"""Analysts' verdicts acting through the links: a confirmed distiller makes its ties count.

The linkage stage alerts a cluster only when it is coordinated *and* its members look
like extraction (``extraction_share_min``). A campaign built to look like customers
passes that gate, which is why an analyst had to find its accounts. Once an analyst
has confirmed some of them, the gate has been answered for the campaign:

- the component of candidate links (every link the stage keeps, at or above
  ``labels.link_min``) around the confirmed accounts, up to ``labels.max_hops`` from
  one of them, is one case; a link touching a confirmed account counts
  ``confirmed_link_boost`` times its weight;
- a case holding at least ``confirmed_min`` confirmed accounts is alerted whatever the
  extraction gate says, with reason ``analyst_confirmed`` naming them, and each member
  reports the case's risk (``confirmed_risk``) unless its own is higher;
- a *dismissed* account is the opposite: no path runs through it, no case includes it,
  and it inherits no cluster's risk (``LinkedPipeline.risk``). A dismissal never
  raises anyone.

One confirmed account alone is a case of one: its neighbours share infrastructure with
it, which honest customers do too (a campus NAT), so it takes a second confirmation
tied to the first to speak for the component. Everything here runs on the stage's
evaluation cadence and only while there are confirmed accounts; the verdicts and the
cases are bounded (``capacity``, ``max_members``) and checkpointed
(:class:`~distillguard.detectors.state.LabelLinksState`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

from distillguard.detectors.linkage.components import components
from distillguard.detectors.state import LabelCaseState, LabelLinksState, as_state
from distillguard.records import Alert, Cluster, Evidence, Reason, iso, level_for
from distillguard.settings import LinkageLabels

SIGNAL = "analyst_confirmed"
#: confirmed ids named in a reason's detail (an alert lists all of them as evidence)
_NAMED = 8


class AnalystLinks:
    """Confirmed and dismissed accounts, and the cases of links they make.

    Parameters
    ----------
    config
        ``detectors.linkage.labels`` of the settings.
    prefix
        The linkage stage's cluster-id prefix: a case is a cluster to the store.
    interval_s
        Event-time cadence of :meth:`evaluate` (the stage's ``eval_interval_s``).

    Examples
    --------
    Two confirmed accounts tied by candidate links to a third make one alerted case;
    the dismissed account linked to them stays out of it:

    >>> links = AnalystLinks(LinkageLabels(), "clu_", 60.0)
    >>> for account, verdict in (("a", True), ("b", True), ("x", False)):
    ...     links.learn(account, verdict, now=0.0)
    >>> candidate = {("a", "c"): 0.7, ("b", "c"): 0.8, ("c", "x"): 2.0, ("d", "e"): 3.0}
    >>> alerts, clusters = links.evaluate(10.0, candidate)
    >>> [(a.subject_id, a.members, a.reasons[0].signal) for a in alerts]
    [('clu_lbl-e8b7be43', ['a', 'b', 'c'], 'analyst_confirmed')]
    >>> links.risk("c")[0], links.risk("x"), links.risk("d")
    (0.9, None, None)
    """

    def __init__(self, config: LinkageLabels, prefix: str, interval_s: float) -> None:
        self.config = config
        self.prefix = prefix
        self.interval_s = interval_s
        #: account -> event time of the verdict, oldest first (insertion order)
        self.confirmed: dict[str, float] = {}
        self.dismissed: dict[str, float] = {}
        #: event time of the next :meth:`evaluate`; +inf while there is nothing to judge,
        #: so the per-event check is one comparison
        self.next_eval = math.inf
        self._cases: dict[str, LabelCaseState] = {}
        self._case_of: dict[str, str] = {}

    # -- verdicts ------------------------------------------------------------------------

    def learn(self, account_id: str, confirmed: bool, now: float) -> None:
        """Record a verdict; the latest one on an account replaces an earlier one."""
        keep, drop = (
            (self.confirmed, self.dismissed) if confirmed else (self.dismissed, self.confirmed)
        )
        drop.pop(account_id, None)
        keep.pop(account_id, None)
        keep[account_id] = now if math.isfinite(now) else 0.0
        while len(keep) > self.config.capacity:
            del keep[next(iter(keep))]
        self.next_eval = -math.inf  # judged at the next event, not a cadence later
        if not confirmed and account_id in self._case_of:
            self._case_of.pop(account_id)

    def is_dismissed(self, account_id: str) -> bool:
        return account_id in self.dismissed

    def due(self, now: float) -> bool:
        """Whether :meth:`evaluate` should run now (never without confirmed accounts)."""
        return now >= self.next_eval

    # -- cases ---------------------------------------------------------------------------

    def evaluate(
        self, now: float, links: Mapping[tuple[str, str], float]
    ) -> tuple[list[Alert], list[Cluster]]:
        """Recompute the cases from the stage's candidate links; alerts for cases that
        are new or gained members, and every case that changed as a cluster record."""
        cfg = self.config
        confirmed, dismissed = self.confirmed, self.dismissed
        adjacent: dict[str, list[str]] = {}
        for (a, b), w in links.items():
            if a in dismissed or b in dismissed:
                continue
            if a in confirmed or b in confirmed:
                w *= cfg.confirmed_link_boost
            if w >= cfg.link_min:
                adjacent.setdefault(a, []).append(b)
                adjacent.setdefault(b, []).append(a)
        # Breadth-first from every confirmed account at once: hops to the nearest one.
        hops = dict.fromkeys(confirmed, 0)
        frontier = list(confirmed)
        for hop in range(1, cfg.max_hops + 1):
            reached = []
            for a in frontier:
                for b in adjacent.get(a, ()):
                    if b not in hops:
                        hops[b] = hop
                        reached.append(b)
            frontier = reached
        found = components(hops, ((a, b) for a in hops for b in adjacent.get(a, ()) if b in hops))
        old, cases = self._cases, {}
        for members in found:
            held = sorted(a for a in members if a in confirmed)
            if len(held) < cfg.confirmed_min:
                continue
            members.sort(key=lambda a: (hops[a], a))
            kept = sorted(members[: cfg.max_members])
            cid = (
                next(
                    (
                        c
                        for c in sorted(old)
                        if c not in cases and set(old[c].confirmed) & set(held)
                    ),
                    None,
                )
                or f"{self.prefix}lbl-{zlib.crc32(held[0].encode()):08x}"
            )
            prior = old.get(cid)
            cases[cid] = LabelCaseState(
                members=kept,
                confirmed=held,
                first_alert_ts=prior.first_alert_ts if prior is not None else None,
                alerted_members=prior.alerted_members if prior is not None else [],
            )
        alerts, clusters = [], []
        for cid in sorted(set(old) | set(cases)):
            case = cases.get(cid)
            if case is None:
                clusters.append(
                    Cluster(cluster_id=cid, members=[], risk=0.0, level="low", updated_at=iso(now))
                )
                continue
            before = old.get(cid)
            if (
                before is None
                or before.members != case.members
                or before.confirmed != case.confirmed
            ):
                clusters.append(self._cluster(cid, case, now))
            if not set(case.members) <= set(case.alerted_members):
                if case.first_alert_ts is None:
                    case.first_alert_ts = now
                case.alerted_members = list(case.members)
                alerts.append(self._alert(cid, case, now))
        self._cases = cases
        self._index()
        self.next_eval = now + self.interval_s if confirmed or cases else math.inf
        return alerts, clusters

    def risk(self, account_id: str) -> tuple[float, Reason, str] | None:
        """(risk, ``analyst_confirmed`` reason, case id) for a member of a case, else None."""
        cid = self._case_of.get(account_id)
        if cid is None or account_id in self.dismissed:
            return None
        case = self._cases[cid]
        return self.config.confirmed_risk, self._reason(cid, case), cid

    def members(self, case_id: str) -> list[str]:
        case = self._cases.get(case_id)
        return [] if case is None else list(case.members)

    def _index(self) -> None:
        self._case_of = {a: cid for cid, case in self._cases.items() for a in case.members}

    def _reason(self, cid: str, case: LabelCaseState) -> Reason:
        named = ", ".join(case.confirmed[:_NAMED])
        more = len(case.confirmed) - _NAMED
        return Reason(
            signal=SIGNAL,
            value=float(len(case.confirmed)),
            detail=f"{cid}: linked to {len(case.confirmed)} accounts analysts confirmed "
            f"({named}{f', +{more}' if more > 0 else ''})",
        )

    def _evidence(self, case: LabelCaseState) -> list[Evidence]:
        return [
            Evidence(
                kind=SIGNAL,
                value=f"{len(case.confirmed)} accounts confirmed by analysts",
                weight=1.0,
                accounts=list(case.confirmed),
            )
        ]

    def _cluster(self, cid: str, case: LabelCaseState, now: float) -> Cluster:
        risk = self.config.confirmed_risk
        return Cluster(
            cluster_id=cid,
            members=list(case.members),
            risk=risk,
            level=level_for(risk),
            evidence=self._evidence(case),
            first_alert_ts=iso(case.first_alert_ts) if case.first_alert_ts is not None else None,
            updated_at=iso(now),
        )

    def _alert(self, cid: str, case: LabelCaseState, now: float) -> Alert:
        risk = self.config.confirmed_risk
        first = case.first_alert_ts if case.first_alert_ts is not None else now
        return Alert(
            alert_id=f"alert_{cid}",
            subject_type="cluster",
            subject_id=cid,
            risk=risk,
            level=level_for(risk),
            reasons=[self._reason(cid, case)],
            created_at=iso(first),
            updated_at=iso(now),
            cluster_id=cid,
            members=list(case.members),
            evidence=self._evidence(case),
        )

    # -- state ---------------------------------------------------------------------------

    def to_state(self) -> LabelLinksState:
        return LabelLinksState(
            confirmed=list(self.confirmed.items()),
            dismissed=list(self.dismissed.items()),
            next_eval=self.next_eval,
            cases=self._cases,
        )

    @classmethod
    def from_state(
        cls,
        state: LabelLinksState | dict[str, object],
        config: LinkageLabels,
        prefix: str,
        interval_s: float,
    ) -> AnalystLinks:
        state = as_state(state, LabelLinksState)
        links = cls(config, prefix, interval_s)
        links.confirmed = dict(state.confirmed)
        links.dismissed = dict(state.dismissed)
        links.next_eval = state.next_eval
        links._cases = {
            cid: LabelCaseState(
                members=list(c.members),
                confirmed=list(c.confirmed),
                first_alert_ts=c.first_alert_ts,
                alerted_members=list(c.alerted_members),
            )
            for cid, c in state.cases.items()
        }
        links._index()
        return links
