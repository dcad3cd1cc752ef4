"""The streaming worker with `detectors.pipeline: linked`, on the real embedded stack.

A hydra published to Kafka comes out as one cluster alert in the alert store and on
the alerts topic, with a cluster record and members whose stored risk names the
cluster; a restarted worker resumes the linkage state from its checkpoint.
"""

from __future__ import annotations

import random
import uuid

import msgspec
import redis
from kafka import KafkaConsumer

from distillguard.detectors.linkage import LinkedPipeline
from distillguard.detectors.pipeline import build_pipeline
from distillguard.events import RequestEvent, encode
from distillguard.infra import EmbeddedStack
from distillguard.records import AccountRisk, Alert, Cluster, ClusterTimeline, loads
from distillguard.settings import Detectors, Settings, Topics
from distillguard.settings import Worker as WorkerSettings
from distillguard.store import schema
from distillguard.stream.admin import ensure_topics
from distillguard.stream.producer import EventPublisher
from distillguard.stream.sinks import default_sink
from distillguard.stream.worker import Worker

T0 = 1_790_000_000.0


def _events() -> list[RequestEvent]:
    rng = random.Random(12)
    out = []
    for i in range(10):
        for j in range(6):
            out.append(
                RequestEvent(
                    event_id=f"h{i}-{j}",
                    ts=T0 + rng.uniform(0, 7200),
                    account_id=f"hyd{i}",
                    model="m",
                    input_tokens=30,
                    output_tokens=400,
                    status=200,
                    payment_fingerprint="pf_shared",
                    ip=f"45.77.{12 + j % 3}.{rng.randint(1, 250)}",
                    user_agent="python-requests/2.31.0",
                )
            )
    for i in range(30):
        for j in range(4):
            out.append(
                RequestEvent(
                    event_id=f"u{i}-{j}",
                    ts=T0 + rng.uniform(0, 7200),
                    account_id=f"user{i}",
                    model="m",
                    input_tokens=30,
                    output_tokens=200,
                    status=200,
                    payment_fingerprint=f"pf_{i}",
                    ip="141.20.5.9",
                    user_agent="openai-python/1.54.3",
                )
            )
    out.sort(key=lambda e: e.ts)
    return out


def test_worker_publishes_and_stores_cluster_alerts(
    stack: EmbeddedStack, redis_client: redis.Redis
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"lk-{tag}", dead_letter=f"lk-{tag}.dlq", alerts=f"lk-{tag}.al", partitions=1
    )
    ensure_topics(stack.bootstrap, topics)
    settings = Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=stack.redis_url,
        topics=topics,
        worker=WorkerSettings(group_id=f"g-{tag}", batch_max_records=50),
        detectors=Detectors(pipeline="linked"),
    )
    events = _events()
    half = len(events) // 2
    with EventPublisher(stack.bootstrap, topics.requests) as pub:
        for e in events[:half]:
            pub.send(e.account_id, encode(e))
    first = Worker(settings, build_pipeline(settings), sink=default_sink(settings))
    assert isinstance(first.pipeline, LinkedPipeline)
    assert first.run(max_idle_s=2).processed == half
    with EventPublisher(stack.bootstrap, topics.requests) as pub:
        for e in events[half:]:
            pub.send(e.account_id, encode(e))
    # A new process: linkage state must come back from the shared checkpoint.
    second = Worker(settings, build_pipeline(settings), sink=default_sink(settings))
    assert second.run(max_idle_s=2).processed == len(events) - half
    assert isinstance(second.pipeline, LinkedPipeline)
    # both halves of hyd0's six requests are in the linkage state: it was restored
    assert second.pipeline.linkage._graph.holders["hyd0"].events == 6
    cid = second.pipeline.linkage.cluster_of("hyd0")
    assert cid is not None
    assert second.pipeline.linkage.members(cid) == sorted(f"hyd{i}" for i in range(10))

    raw_alert = redis_client.get(schema.alert(f"alert_{cid}"))
    assert raw_alert is not None
    alert = loads(raw_alert, Alert)
    assert alert.subject_type == "cluster" and alert.cluster_id == cid
    assert set(alert.members) >= {f"hyd{i}" for i in range(4)}
    assert any(e.kind == "payment" and e.value == "pf_shared" for e in alert.evidence)

    raw_cluster = redis_client.get(schema.cluster(cid))
    assert raw_cluster is not None
    stored = loads(raw_cluster, Cluster)
    assert set(stored.members) == {f"hyd{i}" for i in range(10)}
    # its timeline, written with it: each member's requests so far, in whole seconds
    # (events go in time order: a prefix of what was sent), the first worker's half
    # restored from the per-account checkpoint
    raw_timeline = redis_client.get(schema.cluster_timeline(cid))
    assert raw_timeline is not None
    timeline = loads(raw_timeline, ClusterTimeline)
    assert sorted(m.account_id for m in timeline.members) == sorted(stored.members)
    assert timeline.hidden == 0
    first_half = {int(e.ts) for e in events[:half]}
    for row in timeline.members:
        sent = sorted(int(e.ts) for e in events if e.account_id == row.account_id)
        assert row.times == sent[: len(row.times)] and row.requests == len(row.times)
    assert any(
        first_half & set(row.times) and set(row.times) - first_half for row in timeline.members
    )

    risk = loads(redis_client.get(schema.risk("hyd3")), AccountRisk)  # type: ignore[arg-type]
    assert risk.cluster_id == cid and risk.risk >= 0.7
    assert any(r.signal == "cluster_membership" for r in risk.reasons)
    honest = redis_client.get(schema.risk("user3"))
    assert honest is None or loads(honest, AccountRisk).cluster_id is None

    consumer = KafkaConsumer(
        topics.alerts,
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        group_id=None,
    )
    published = [msgspec.json.decode(m.value) for m in consumer]
    consumer.close()
    assert any(a.get("subject_type") == "cluster" and a.get("cluster_id") == cid for a in published)
