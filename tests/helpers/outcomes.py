"""What a run of the detectors concluded, read the same way from the store and from replay.

Live processing, a crashed-and-restarted run and an offline replay must agree; this
module reduces each to one comparable :class:`Outcome`: every account's last reported
risk, every alert's subject and level, and every cluster's members.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from distillguard.detectors.pipeline import BatchOutput, build_pipeline
from distillguard.evaluation.replay import decoder_for
from distillguard.events import InvalidEvent
from distillguard.records import AccountRisk, Alert, Cluster, loads
from distillguard.settings import Settings
from distillguard.store import schema
from distillguard.store.risk import joined
from distillguard.stream.dedup import DedupWindow, dedup_key
from tests.helpers.replies import value


@dataclass
class Outcome:
    risks: dict[str, float] = field(default_factory=dict)
    #: account id -> level of its (latest) account alert
    account_alerts: dict[str, str] = field(default_factory=dict)
    #: cluster id -> (members of its latest alert, level)
    cluster_alerts: dict[str, tuple[frozenset[str], str]] = field(default_factory=dict)
    #: cluster id -> members (clusters with members only)
    clusters: dict[str, frozenset[str]] = field(default_factory=dict)

    def take(self, out: BatchOutput) -> None:
        for r in out.risks:
            self.risks[r.account_id] = r.risk
        for a in out.alerts:
            self._alert(a)
        for c in out.clusters:
            self._cluster(c)

    def _alert(self, a: Alert) -> None:
        if a.subject_type == "account":
            self.account_alerts[a.subject_id] = a.level
        else:
            self.cluster_alerts[a.subject_id] = (frozenset(a.members), a.level)

    def _cluster(self, c: Cluster) -> None:
        if c.members:
            self.clusters[c.cluster_id] = frozenset(c.members)
        else:
            self.clusters.pop(c.cluster_id, None)

    def memberships(self) -> set[frozenset[str]]:
        return set(self.clusters.values())

    def differences(self, other: Outcome, tolerance: float = 0.05) -> list[str]:
        """Human-readable differences beyond ``tolerance`` (empty when they agree)."""
        out = []
        accounts = set(self.risks) | set(other.risks)
        far = sorted(
            (abs(self.risks.get(a, 0.0) - other.risks.get(a, 0.0)), a)
            for a in accounts
            if abs(self.risks.get(a, 0.0) - other.risks.get(a, 0.0)) > tolerance
        )
        if far:
            out.append(f"{len(far)} risks differ by > {tolerance} (max {far[-1]})")
        if self.account_alerts != other.account_alerts:
            keys = set(self.account_alerts) ^ set(other.account_alerts)
            changed = {
                a
                for a in set(self.account_alerts) & set(other.account_alerts)
                if self.account_alerts[a] != other.account_alerts[a]
            }
            out.append(
                f"account alerts differ: on one side only {sorted(keys)[:5]},"
                f" in level {sorted(changed)[:5]}"
            )
        mine = {m: lvl for m, lvl in self.cluster_alerts.values()}
        theirs = {m: lvl for m, lvl in other.cluster_alerts.values()}
        if mine != theirs:
            out.append(f"cluster alerts differ: {len(set(mine) ^ set(theirs))} member sets")
        if self.memberships() != other.memberships():
            out.append(
                f"cluster memberships differ: {len(self.memberships() ^ other.memberships())}"
            )
        return out


def from_store(client: redis.Redis) -> Outcome:
    """The outcome a worker left in the alert store."""
    o = Outcome()
    for key in client.scan_iter(match=schema.risk("*"), count=1000):
        r = loads(value(client, key), AccountRisk)
        o.risks[r.account_id] = r.risk
    # a split topology's cluster stage stores what lifts accounts beside their risks:
    # read as the risk lookup reads them (store.risk.joined)
    prefix = schema.cluster_risk("")
    for key in client.scan_iter(match=schema.cluster_risk("*"), count=1000):
        account_id = (key.decode() if isinstance(key, bytes) else key)[len(prefix) :]
        raw = client.get(schema.risk(account_id))
        o.risks[account_id] = joined(account_id, raw, value(client, key)).risk
    for key in client.scan_iter(match=schema.alert("*"), count=1000):
        o._alert(loads(value(client, key), Alert))
    for key in client.scan_iter(match=schema.cluster("*"), count=1000):
        o._cluster(loads(value(client, key), Cluster))
    return o


def from_replay(lines: Iterable[bytes], settings: Settings) -> Outcome:
    """The outcome of the same detectors over a file, in file order, as the worker judges events."""
    pipeline = build_pipeline(settings)
    decode = decoder_for(settings).decode
    judge = pipeline.clock.judge
    seen = DedupWindow(10_000_000)
    o = Outcome()
    n = 0
    for line in lines:
        try:
            event = decode(line.rstrip(b"\n"))
        except InvalidEvent:
            continue
        if judge(event.ts) is not None or not seen.add(dedup_key(event)):
            continue
        pipeline.process(event)
        n += 1
        if n % 5000 == 0:
            o.take(pipeline.drain())
    o.take(pipeline.drain())
    return o
