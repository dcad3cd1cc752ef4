"""Persisting one batch of detector output: the worker's single call into Redis.

The worker drains its pipeline every batch and calls :meth:`AlertWriter.write`
before committing Kafka offsets. A batch costs a handful of round trips whatever
its size (thousands of risks are one pipelined transaction): read the open-alert
pointers and the suppression rules, read the open alerts being updated, then write
everything in one ``MULTI``. The reads are ``WATCH``-ed, so an analyst acknowledging
or closing an alert at the same moment makes the batch retry rather than be
overwritten.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import orjson
import redis

from distillguard.records import (
    AccountRisk,
    Alert,
    Cluster,
    ClusterRisk,
    ClusterTimeline,
    dumps,
    iso,
    loads,
)
from distillguard.settings import Settings
from distillguard.store import schema
from distillguard.store.connection import text
from distillguard.store.lifecycle import OPEN_STATUSES
from distillguard.store.merge import as_new, merge_update, suppressed_by
from distillguard.store.models import Suppression

if TYPE_CHECKING:
    from distillguard.detectors.pipeline import ChartPoint

log = logging.getLogger(__name__)

#: queues more commands into the batch's transaction (the worker's checkpoint)
QueueAlso = Callable[[redis.client.Pipeline], None]
#: runs with the alerts about to be committed, right before EXEC (confirmed Kafka sends)
BeforeCommit = Callable[[list[Alert]], None]


@dataclass
class _Planned:
    alert: Alert
    kind: str  # "created" | "updated"
    previous: Alert | None


class AlertWriter:
    """Writes the worker's batches: risks, deduplicated alerts, clusters, chart data.

    Parameters
    ----------
    client
        A synchronous ``redis.Redis`` (the worker's).
    risk_ttl_s
        Lifetime of an account's risk record; refreshed whenever the account changes.
    feature_history_len, sample_prompts_len
        Caps of the per-account chart history and sample prompt lists.
    """

    def __init__(
        self,
        client: redis.Redis,
        risk_ttl_s: int = 7 * 86400,
        feature_history_len: int = 200,
        sample_prompts_len: int = 20,
        max_attempts: int = 8,
    ) -> None:
        self.client = client
        self.risk_ttl_s = risk_ttl_s
        self.feature_history_len = feature_history_len
        self.sample_prompts_len = sample_prompts_len
        self.max_attempts = max_attempts

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> AlertWriter:
        store = settings.api.store
        return cls(
            client,
            risk_ttl_s=store.risk_ttl_s,
            feature_history_len=store.feature_history_len,
            sample_prompts_len=store.sample_prompts_len,
        )

    def write(
        self,
        risks: Sequence[AccountRisk],
        alerts: Sequence[Alert],
        clusters: Sequence[Cluster],
        *,
        features: Mapping[str, Mapping[str, float]] | None = None,
        prompts: Mapping[str, Sequence[str]] | None = None,
        chart_points: Sequence[ChartPoint] = (),
        timelines: Sequence[ClusterTimeline] = (),
        raised: Sequence[ClusterRisk] = (),
        queue_also: QueueAlso | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> list[Alert]:
        """Persist one batch; return the alerts created or updated (to publish on Kafka).

        ``features`` (account -> feature snapshot), ``chart_points`` (captured when the
        detector scored) and ``prompts`` (account -> recent prompts) feed the analyst's
        charts and samples, ``timelines`` the cluster page's members' request times (a
        dissolved cluster's is deleted); all optional. Alerts for a subject that already
        has an open or acknowledged alert update that alert; alerts matched by an active
        suppression are dropped (their risk is written). ``queue_also`` adds commands
        to the same transaction and ``before_commit`` sees the alerts right before it
        executes: the worker commits its checkpoint with the writes it covers, after
        the alerts are confirmed on Kafka. A conflict with an analyst re-plans and runs
        both again.
        """
        now = time.time()
        at = iso(now)
        if not alerts:
            with self.client.pipeline(transaction=True) as pipe:
                self._queue_scores(
                    pipe, risks, clusters, features, prompts, now, chart_points, timelines
                )
                self._queue_raised(pipe, raised)
                if queue_also is not None:
                    queue_also(pipe)
                if before_commit is not None:
                    before_commit([])
                pipe.execute()
            return []
        # The last detection of a subject in the batch is the current one.
        latest = {schema.subject_field(a.subject_type, a.subject_id): a for a in alerts}
        for _ in range(self.max_attempts):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    planned = self._plan(pipe, latest, now, at)
                    pipe.multi()
                    self._queue_scores(
                        pipe, risks, clusters, features, prompts, now, chart_points, timelines
                    )
                    self._queue_raised(pipe, raised)
                    self._queue_alerts(pipe, planned, now)
                    if queue_also is not None:
                        queue_also(pipe)
                    written = [p.alert for p in planned]
                    if before_commit is not None:
                        before_commit(written)
                    pipe.execute()
                    return written
                except redis.WatchError:
                    continue
        raise RuntimeError(f"alert batch kept conflicting after {self.max_attempts} attempts")

    def _plan(
        self, pipe: redis.client.Pipeline, latest: dict[str, Alert], now: float, at: str
    ) -> list[_Planned]:
        fields = list(latest)
        pipe.watch(schema.ALERTS_OPEN)
        open_ids = pipe.hmget(schema.ALERTS_OPEN, fields)
        rules = [r for r in map(_load_rule, pipe.hvals(schema.SUPPRESSIONS)) if r is not None]
        open_keys = {f: schema.alert(text(i)) for f, i in zip(fields, open_ids, strict=True) if i}
        # Ids the detector proposes for new alerts: one already taken (by a closed alert
        # of a detector that reuses ids) must not overwrite that alert's record.
        new_keys = {f: schema.alert(a.alert_id) for f, a in latest.items()}
        if open_keys:
            pipe.watch(*open_keys.values())
        wanted = [*open_keys.values(), *new_keys.values()]
        stored = {
            k: raw for k, raw in zip(wanted, pipe.mget(wanted), strict=True) if raw is not None
        }
        existing: dict[str, Alert] = {}
        for field, key in open_keys.items():
            current = _load_alert(stored[key]) if key in stored else None
            if current is not None and current.status in OPEN_STATUSES:
                existing[field] = current
        planned: list[_Planned] = []
        for field, incoming in latest.items():
            if suppressed_by(incoming, rules, now) is not None:
                continue
            previous = existing.get(field)
            if previous is not None:
                planned.append(_Planned(merge_update(previous, incoming, at), "updated", previous))
                continue
            if schema.alert(incoming.alert_id) in stored:
                incoming = msgspec.structs.replace(
                    incoming, alert_id=f"{incoming.alert_id}-{secrets.token_hex(4)}"
                )
            planned.append(_Planned(as_new(incoming, at), "created", None))
        return planned

    def _queue_alerts(
        self, pipe: redis.client.Pipeline, planned: list[_Planned], now: float
    ) -> None:
        for item in planned:
            alert = item.alert
            member = schema.index_member(alert.created_at, alert.alert_id)
            if item.previous is not None:
                now_in = set(schema.alert_index_keys(alert))
                for key in set(schema.alert_index_keys(item.previous)) - now_in:
                    pipe.zrem(key, member)
            for key in schema.alert_index_keys(alert):
                pipe.zadd(key, {member: 0})
            pipe.set(schema.alert(alert.alert_id), dumps(alert))
            pipe.hset(
                schema.ALERTS_OPEN,
                schema.subject_field(alert.subject_type, alert.subject_id),
                alert.alert_id,
            )
            if alert.subject_type == "account" and alert.features:
                at = alert.last_event_ts or iso(now)
                self._push_features(pipe, alert.subject_id, alert.features, at)
            pipe.publish(schema.ALERT_EVENTS_CHANNEL, schema.event_message(item.kind, alert))

    def _queue_scores(
        self,
        pipe: redis.client.Pipeline,
        risks: Sequence[AccountRisk],
        clusters: Sequence[Cluster],
        features: Mapping[str, Mapping[str, float]] | None,
        prompts: Mapping[str, Sequence[str]] | None,
        now: float,
        chart_points: Sequence[ChartPoint] = (),
        timelines: Sequence[ClusterTimeline] = (),
    ) -> None:
        # execute_command, not pipe.set(): redis-py's set() argument checks cost more than
        # the command itself when a batch carries thousands of risks.
        ttl = self.risk_ttl_s
        for risk in risks:
            pipe.execute_command("SET", schema.risk(risk.account_id), dumps(risk), "EX", ttl)
        for cluster in clusters:
            pipe.set(schema.cluster(cluster.cluster_id), dumps(cluster))
            pipe.zadd(schema.CLUSTERS, {cluster.cluster_id: cluster.risk})
            if not cluster.members:
                pipe.delete(schema.cluster_timeline(cluster.cluster_id))
        for timeline in timelines:
            pipe.set(schema.cluster_timeline(timeline.cluster_id), dumps(timeline))
        # A chart point is stamped with the event time it describes (the risk's
        # updated_at), so charts line up with alert times in a replay or a backfill.
        stamped = {r.account_id: r.updated_at for r in risks if r.updated_at}
        for account_id, snapshot in (features or {}).items():
            self._push_features(pipe, account_id, snapshot, stamped.get(account_id) or iso(now))
        for point in chart_points:
            self._push_features(pipe, point.account_id, point.features, point.at)
        for account_id, texts in (prompts or {}).items():
            if texts:
                key = schema.prompts(account_id)
                pipe.lpush(key, *(t[: schema.PROMPT_MAX_CHARS] for t in texts))
                pipe.ltrim(key, 0, self.sample_prompts_len - 1)

    def _queue_raised(self, pipe: redis.client.Pipeline, raised: Sequence[ClusterRisk]) -> None:
        """The cluster stage's lifts, beside the account stage's risks (the risk lookup
        joins the two); an account nothing lifts any more loses its record."""
        ttl = self.risk_ttl_s
        for r in raised:
            key = schema.cluster_risk(r.account_id)
            if r.raised:
                pipe.execute_command("SET", key, dumps(r), "EX", ttl)
            else:
                pipe.delete(key)

    def _push_features(
        self,
        pipe: redis.client.Pipeline,
        account_id: str,
        snapshot: Mapping[str, float],
        at: str,
    ) -> None:
        key = schema.features(account_id)
        pipe.lpush(key, orjson.dumps({"ts": at, "features": dict(snapshot)}))
        pipe.ltrim(key, 0, self.feature_history_len - 1)


def _load_alert(raw: bytes | str) -> Alert | None:
    try:
        return loads(raw, Alert)
    except msgspec.DecodeError:
        log.warning("ignoring undecodable stored alert: %.200r", raw)
        return None  # a corrupt record is replaced by a fresh alert, not a crashed batch


def _load_rule(raw: bytes | str) -> Suppression | None:
    try:
        return loads(raw, Suppression)
    except msgspec.DecodeError:
        return None  # a corrupt rule must not stop the worker's batch
