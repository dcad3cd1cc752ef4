"""The Redis store against a real Valkey: writer dedup, suppression, lifecycle, feeds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from distillguard.infra import free_port, stop_process
from distillguard.records import (
    AccountRisk,
    Alert,
    Cluster,
    ClusterTimeline,
    Evidence,
    Label,
    Level,
    MemberRequests,
    Reason,
    dumps,
    iso,
)
from distillguard.store import alerts as alert_store
from distillguard.store import clusters as cluster_store
from distillguard.store import schema, stats
from distillguard.store.connection import async_client, text
from distillguard.store.feedback import read_labels
from distillguard.store.lifecycle import IllegalTransition
from distillguard.store.models import Suppression
from distillguard.store.writer import AlertWriter
from tests.helpers.live_api import start_valkey
from tests.helpers.replies import items, stream_fields

T0 = 1_795_168_800.0  # 2026-11-20T10:00:00Z


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_valkey(port, Path(tmp_path_factory.mktemp("valkey")))
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(proc)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    c.flushdb()
    yield c
    c.flushdb()
    c.close()


def run(redis_url: str, coro_fn, *args, **kwargs):
    async def go():
        c = async_client(redis_url)
        try:
            return await coro_fn(c, *args, **kwargs)
        finally:
            await c.aclose()

    return asyncio.run(go())


def make_alert(alert_id: str, subject: str, risk: float, at: float = T0, **kw: Any) -> Alert:
    level: Level = "critical" if risk >= 0.9 else "high" if risk >= 0.7 else "medium"
    return Alert(
        alert_id=alert_id,
        subject_type=kw.pop("subject_type", "account"),
        subject_id=subject,
        risk=risk,
        level=level,
        created_at=iso(at),
        updated_at=iso(at),
        reasons=[Reason(signal="volume", value=risk)],
        **kw,
    )


def test_risks_written_with_ttl_in_one_batch(client: redis.Redis) -> None:
    writer = AlertWriter(client, risk_ttl_s=600)
    risks = [AccountRisk(account_id=f"a{i}", risk=0.5, level="medium") for i in range(3000)]
    assert writer.write(risks, [], []) == []
    assert client.dbsize() == 3000
    assert 0 < client.ttl(schema.risk("a2999")) <= 600
    stored = client.get(schema.risk("a7"))
    assert stored == dumps(risks[7])


def test_open_alert_is_updated_not_duplicated(client: redis.Redis, redis_url: str) -> None:
    writer = AlertWriter(client)
    first = writer.write([], [make_alert("al1", "acct", 0.75, features={"rate": 1.0})], [])
    assert [a.alert_id for a in first] == ["al1"]
    # the detector raises again for the same subject, under a new id and higher risk
    again = make_alert(
        "al2",
        "acct",
        0.95,
        last_event_ts=iso(T0 + 60),
        evidence=[Evidence(kind="payment", value="p1", weight=1.0)],
    )
    second = writer.write([], [again], [])
    assert [a.alert_id for a in second] == ["al1"]
    stored = run(redis_url, alert_store.get_alert, "al1")
    assert stored.risk == 0.95 and stored.level == "critical"
    assert stored.last_event_ts == iso(T0 + 60) and stored.evidence[0].value == "p1"
    assert [h.action for h in stored.history] == ["evidence grew"]
    assert client.get(schema.alert("al2")) is None
    # the level index moved with the level
    member = schema.index_member(stored.created_at, "al1")
    assert client.zscore(schema.alerts_by_level("critical"), member) is not None
    assert client.zscore(schema.alerts_by_level("high"), member) is None
    # once closed, the subject gets a fresh alert
    run(redis_url, alert_store.review, "al1", "ana", "dismiss", "partner")
    third = writer.write([], [make_alert("al3", "acct", 0.8)], [])
    assert [a.alert_id for a in third] == ["al3"]


def test_suppression_stops_alerts_but_not_scoring(client: redis.Redis) -> None:
    rules = [
        Suppression(
            suppression_id="s1",
            scope="account",
            value="quiet",
            reason="partner",
            created_by="adm",
            created_at=iso(T0),
        ),
        Suppression(
            suppression_id="s2",
            scope="org",
            value="org1",
            reason="eval team",
            created_by="adm",
            created_at=iso(T0),
        ),
        Suppression(
            suppression_id="s3",
            scope="cluster",
            value="clu_x",
            reason="known",
            created_by="adm",
            created_at=iso(T0),
        ),
        Suppression(
            suppression_id="s4",
            scope="account",
            value="expired",
            reason="old",
            created_by="adm",
            created_at=iso(T0),
            expires_at=iso(T0 - 10),
        ),
    ]
    for r in rules:
        client.hset(schema.SUPPRESSIONS, r.suppression_id, dumps(r))
    alerts = [
        make_alert("a1", "quiet", 0.9),
        make_alert("a2", "member", 0.9, org_id="org1"),
        make_alert("a3", "clu_x", 0.9, subject_type="cluster", members=["m1", "m2"]),
        make_alert("a4", "m1", 0.9, cluster_id="clu_x"),
        make_alert("a5", "expired", 0.9),
        make_alert("a6", "loud", 0.9, org_id="org2"),
    ]
    risks = [AccountRisk(account_id="quiet", risk=0.9, level="critical")]
    written = AlertWriter(client).write(risks, alerts, [])
    assert sorted(a.alert_id for a in written) == ["a5", "a6"]
    assert client.get(schema.risk("quiet")) is not None


def test_alert_list_filters_and_cursor(client: redis.Redis, redis_url: str) -> None:
    alerts = [
        make_alert(
            f"al{i:02d}",
            f"acct{i % 3}",
            0.75 if i % 2 else 0.95,
            at=T0 + i,
            cluster_id="clu_1" if i < 4 else None,
        )
        for i in range(12)
    ]
    # one batch per subject generation, so each alert is a new one
    writer = AlertWriter(client)
    for i, a in enumerate(alerts):
        writer.write([], [a], [])
        if i < 9:  # al00..al08 dismissed, al09..al11 stay open
            run(redis_url, alert_store.review, a.alert_id, "ana", "dismiss", None)
    page, cursor = run(redis_url, alert_store.list_alerts, limit=5)
    assert [a.alert_id for a in page] == ["al11", "al10", "al09", "al08", "al07"]
    page2, cursor2 = run(redis_url, alert_store.list_alerts, limit=5, cursor=cursor)
    assert [a.alert_id for a in page2] == ["al06", "al05", "al04", "al03", "al02"]
    page3, cursor3 = run(redis_url, alert_store.list_alerts, limit=5, cursor=cursor2)
    assert [a.alert_id for a in page3] == ["al01", "al00"] and cursor3 is None
    open_, _ = run(redis_url, alert_store.list_alerts, status="open")
    assert [a.alert_id for a in open_] == ["al11", "al10", "al09"]
    both, _ = run(
        redis_url, alert_store.list_alerts, status="dismissed", level="critical", cluster="clu_1"
    )
    assert [a.alert_id for a in both] == ["al02", "al00"]
    acct, _ = run(
        redis_url, alert_store.list_alerts, account="acct1", since_ms=int((T0 + 4) * 1000)
    )
    assert [a.alert_id for a in acct] == ["al10", "al07", "al04"]
    assert client.keys("dg:tmp:*") == []


def test_lifecycle_audit_and_feedback(client: redis.Redis, redis_url: str) -> None:
    AlertWriter(client).write([], [make_alert("al1", "acct", 0.9, features={"cot": 0.8})], [])
    acked = run(redis_url, alert_store.acknowledge, "al1", "ana#k1", None, "looking")
    assert acked.status == "acknowledged" and acked.assignee == "ana#k1"
    with pytest.raises(IllegalTransition):
        run(redis_url, alert_store.acknowledge, "al1", "ana#k1", None, None)
    done = run(redis_url, alert_store.review, "al1", "ana#k1", "confirm", "template farm")
    assert done.status == "confirmed"
    with pytest.raises(IllegalTransition):
        run(redis_url, alert_store.review, "al1", "ana#k1", "dismiss", None)
    labels, last = read_labels(client, "0-0", 10)
    assert [(x.account_id, x.label, x.alert_id, x.features) for x in labels] == [
        ("acct", "distiller", "al1", {"cot": 0.8})
    ]
    assert read_labels(client, last, 10) == ([], last)
    actions = [f[b"entry"] for f in stream_fields(client, schema.AUDIT_STREAM)]
    assert [b'"alert.acknowledge"' in a for a in actions] == [True, False]
    assert b'"alert.confirm"' in actions[1]
    assert client.hget(schema.ALERTS_OPEN, "account:acct") is None


def test_read_labels_skips_bad_entries(client: redis.Redis) -> None:
    client.xadd(schema.FEEDBACK_STREAM, {"label": b"not json"})
    client.xadd(schema.FEEDBACK_STREAM, {"label": dumps(Label(account_id="a", label="benign"))})
    labels, last = read_labels(client, "0-0", 10)
    assert [x.account_id for x in labels] == ["a"]
    assert read_labels(client, last, 10)[0] == []


def test_clusters_and_chart_data(client: redis.Redis) -> None:
    writer = AlertWriter(client, feature_history_len=3, sample_prompts_len=2)
    cluster = Cluster(cluster_id="clu_1", members=["a", "b"], risk=0.9, level="critical")
    for i in range(5):
        writer.write(
            [],
            [],
            [cluster],
            features={"a": {"rate": float(i)}},
            prompts={"a": [f"p{i}" + "x" * 600]},
        )
    assert client.zscore(schema.CLUSTERS, "clu_1") == 0.9
    assert client.llen(schema.features("a")) == 3
    prompts = items(client, schema.prompts("a"))
    assert len(prompts) == 2 and all(len(p) == 500 for p in prompts)
    assert prompts[0].startswith(b"p4")


def test_cluster_timeline_is_written_with_its_cluster_and_goes_when_it_dissolves(
    client: redis.Redis, redis_url: str
) -> None:
    writer = AlertWriter(client)
    cluster = Cluster(cluster_id="clu_2", members=["a", "b"], risk=0.9, level="critical")
    rows = [MemberRequests(account_id="a", times=[1, 2], requests=5)]
    timeline = ClusterTimeline(cluster_id="clu_2", members=rows, hidden=1)
    writer.write([], [], [cluster], timelines=[timeline])
    assert run(redis_url, cluster_store.get_cluster_timeline, "clu_2") == timeline
    assert run(redis_url, cluster_store.get_cluster, "clu_2") == cluster  # stored apart
    gone = Cluster(cluster_id="clu_2", members=[], risk=0.0, level="low")
    writer.write([], [], [gone])
    assert run(redis_url, cluster_store.get_cluster_timeline, "clu_2") is None


def test_analyst_change_during_a_batch_is_not_overwritten(
    client: redis.Redis, redis_url: str
) -> None:
    AlertWriter(client).write([], [make_alert("al1", "acct", 0.75)], [])

    class AckMidway(AlertWriter):
        """Acknowledges the alert between the batch's reads and its write, once."""

        attempts = 0

        def _plan(self, pipe, latest, now, at):
            planned = super()._plan(pipe, latest, now, at)
            AckMidway.attempts += 1
            if AckMidway.attempts == 1:
                run(redis_url, alert_store.acknowledge, "al1", "ana", None, "mine")
            return planned

    written = AckMidway(client).write([], [make_alert("al9", "acct", 0.95)], [])
    assert AckMidway.attempts == 2  # the first attempt's transaction was refused
    assert [(a.alert_id, a.status, a.risk) for a in written] == [("al1", "acknowledged", 0.95)]
    stored = run(redis_url, alert_store.get_alert, "al1")
    assert (stored.status, stored.assignee, stored.risk) == ("acknowledged", "ana", 0.95)


def test_reused_or_corrupt_ids_do_not_clobber_or_crash(client: redis.Redis, redis_url: str) -> None:
    writer = AlertWriter(client)
    writer.write([], [make_alert("fixed", "acct", 0.8)], [])
    run(redis_url, alert_store.review, "fixed", "ana", "dismiss", "benign")
    # a detector reusing its id for the next alert on the subject gets a fresh one
    (again,) = writer.write([], [make_alert("fixed", "acct", 0.9)], [])
    assert again.alert_id.startswith("fixed-") and again.status == "open"
    assert run(redis_url, alert_store.get_alert, "fixed").status == "dismissed"
    # a corrupt stored alert is replaced, not fatal; a bad created_at is replaced by now
    client.set(schema.alert(again.alert_id), b"{not json")
    bad_stamp = msgspec.structs.replace(make_alert("new", "acct", 0.9), created_at="yesterday")
    (fresh,) = writer.write([], [bad_stamp], [])
    assert fresh.alert_id == "new" and fresh.status == "open"
    assert schema.epoch_ms(fresh.created_at) > 0


def test_lag_fields_of_workers_gone_a_day_are_pruned_but_a_fresh_write_is_kept(
    client: redis.Redis,
) -> None:
    now = 2_000_000.0
    old = f"12 {now - schema.WORKER_LAG_KEEP_S - 5}"
    client.hset(
        schema.WORKER_LAG,
        mapping={
            "account:host-101": old,  # an unnamed worker restarted since
            "account:a1": f"3 {now - 30}",
            "cluster:host-7": f"0 {now - schema.WORKER_LAG_KEEP_S + 60}",  # still kept
            "account:junk": "not a lag",
        },
    )
    # a worker reporting again between the read and the delete keeps its field
    stale = stats.stale_lag_fields(client.hgetall(schema.WORKER_LAG), now)
    assert sorted(name for name, _ in stale) == ["account:host-101", "account:junk"]
    client.hset(schema.WORKER_LAG, "account:host-101", f"4 {now}")
    script = client.register_script(stats._DELETE_IF_UNCHANGED)
    assert script(keys=[schema.WORKER_LAG], args=["account:host-101", old]) == 0

    client.hset(schema.WORKER_LAG, "account:host-101", old)
    assert stats.prune_worker_lags(client, now) == 2
    left = {text(k) for k in client.hgetall(schema.WORKER_LAG)}
    assert left == {"account:a1", "cluster:host-7"}
    assert stats.prune_worker_lags(client, now) == 0
