"""A restarted worker continues with the same detector scores as one that never stopped."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
import redis

from distillguard.detectors.pipeline import BatchOutput, ChartPoint, build_pipeline
from distillguard.events import EventDecoder
from distillguard.infra import EmbeddedStack
from distillguard.records import Alert, iso, loads
from distillguard.settings import Settings, Topics
from distillguard.settings import Worker as WorkerSettings
from distillguard.sim.engine import simulate
from distillguard.sim.scenario import load_scenario
from distillguard.store import schema
from distillguard.stream.admin import ensure_topics
from distillguard.stream.producer import EventPublisher
from distillguard.stream.publish_file import account_key
from distillguard.stream.sinks import default_sink
from distillguard.stream.worker import Worker
from tests.conftest import wait_for
from tests.helpers.replies import members, value


@pytest.fixture(scope="module")
def scenario_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("sim") / "events.jsonl"
    simulate(load_scenario("small"), out, out.with_name("labels.jsonl"))
    return out.read_bytes().splitlines()[:24_000]


def _private_settings(stack: EmbeddedStack, partitions: int) -> Settings:
    """Settings on fresh topics and a fresh consumer group of the shared stack."""
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"st-{tag}",
        dead_letter=f"st-{tag}.dlq",
        alerts=f"st-{tag}.al",
        partitions=partitions,
    )
    ensure_topics(stack.bootstrap, topics)
    return Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=stack.redis_url,
        topics=topics,
        worker=WorkerSettings(group_id=f"g-{tag}", batch_max_records=1000),
    )


def _publish(stack: EmbeddedStack, topic: str, lines: list[bytes]) -> None:
    with EventPublisher(stack.bootstrap, topic) as pub:
        for line in lines:
            pub.send(account_key(line), line)


def test_graceful_restart_gives_the_same_scores_as_an_uninterrupted_run(
    stack: EmbeddedStack, redis_client: redis.Redis, scenario_lines: list[bytes]
) -> None:
    # One partition, so the worker sees events in exactly the file's order.
    settings = _private_settings(stack, partitions=1)
    topics = settings.topics

    reference = build_pipeline(settings)
    decoder = EventDecoder()
    for line in scenario_lines:
        reference.process(decoder.decode(line))
    reference.drain()

    half = len(scenario_lines) // 2
    _publish(stack, topics.requests, scenario_lines[:half])
    first = Worker(settings, build_pipeline(settings))
    assert first.run(max_idle_s=2).processed == half
    _publish(stack, topics.requests, scenario_lines[half:])
    second = Worker(settings, build_pipeline(settings))  # a new process would start empty
    assert second.run(max_idle_s=2).processed == len(scenario_lines) - half

    accounts = reference.accounts()
    assert len(accounts) > 50
    assert sorted(second.pipeline.accounts()) == sorted(accounts)
    expected = {a: reference.risk(a).risk for a in accounts}
    got = {a: second.pipeline.risk(a).risk for a in accounts}
    assert got == expected
    assert max(expected.values()) > 0.5  # the comparison covers accounts that alerted


def test_chart_points_follow_accounts_in_event_time(
    stack: EmbeddedStack, redis_client: redis.Redis, scenario_lines: list[bytes]
) -> None:
    settings = _private_settings(stack, partitions=2)
    topics = settings.topics
    _publish(stack, topics.requests, scenario_lines)
    Worker(settings, build_pipeline(settings), sink=default_sink(settings)).run(max_idle_s=2)

    alert_ids = [schema.member_alert_id(m) for m in members(redis_client, schema.ALERTS_ALL)]
    alerts = [loads(value(redis_client, schema.alert(i)), Alert) for i in alert_ids]
    accounts = [a for a in alerts if a.subject_type == "account"]
    assert accounts, "the scenario slice raised no account alert"
    points = {
        a.subject_id: redis_client.lrange(schema.features(a.subject_id), 0, -1) for a in accounts
    }
    assert all(points[a.subject_id] for a in accounts)
    stamps = {orjson.loads(p)["ts"] for h in points.values() for p in h}
    # stamped with the simulated event time (days ago), not the worker's wall clock
    assert max(stamps) < iso(time.time() - 86_400)


def test_chart_points_are_captured_when_scored_and_written_with_the_checkpoint(
    stack: EmbeddedStack, redis_client: redis.Redis, scenario_lines: list[bytes]
) -> None:
    pipeline = build_pipeline(Settings())
    decoder = EventDecoder()
    points: list[ChartPoint] = []
    for line in scenario_lines:
        pipeline.process(decoder.decode(line))
    out = pipeline.drain()
    points = out.chart_points
    assert points, "no account reached medium risk in the slice"
    alerted = {a.subject_id for a in out.alerts}
    assert not {p.account_id for p in points} & alerted  # alerts carry their own point
    assert all(p.features and p.at.startswith("2026-11-") for p in points)  # event time

    queued: list[int] = []
    sink = default_sink(Settings(redis_url=stack.redis_url), redis_client)
    point = points[0]
    sink.write(
        BatchOutput(chart_points=[point]),
        queue_also=lambda pipe: queued.append(len(pipe)),
        before_commit=lambda alerts: None,
    )
    stored = [
        orjson.loads(p) for p in redis_client.lrange(schema.features(point.account_id), 0, -1)
    ]
    assert stored == [{"ts": point.at, "features": point.features}]
    assert queued and queued[0] > 0  # the checkpoint's commands joined the same transaction


def test_the_shipped_pipeline_exposes_features_and_forgetting_to_the_worker(
    scenario_lines: list[bytes],
) -> None:
    pipeline = build_pipeline(Settings())
    decoder = EventDecoder()
    events = [decoder.decode(line) for line in scenario_lines[:3_000]]
    for e in events:
        pipeline.process(e)
    account = events[-1].account_id
    features = pipeline.account_features(account)  # type: ignore[attr-defined]
    assert features and "requests_per_hour" in features
    pipeline.forget([account])
    assert account not in pipeline.accounts()


def test_a_rebalance_moves_account_state_to_the_new_owner(
    stack: EmbeddedStack, redis_client: redis.Redis, scenario_lines: list[bytes]
) -> None:
    """A second worker joins mid-stream: the partitions it takes over bring their history."""
    import threading

    from distillguard.detectors.account_pipeline import AccountPipeline

    settings = _private_settings(stack, partitions=2)
    detectors = settings.detectors
    half = len(scenario_lines) // 2
    _publish(stack, settings.topics.requests, scenario_lines[:half])
    first = Worker(settings, AccountPipeline(detectors))
    threads = [threading.Thread(target=first.run, daemon=True)]
    threads[0].start()
    wait_for(lambda: first.stats.processed >= half, 60, "the first worker to catch up")

    second = Worker(settings, AccountPipeline(detectors))
    threads.append(threading.Thread(target=second.run, daemon=True))
    threads[1].start()
    wait_for(lambda: len(first.windows) == 1 and len(second.windows) == 1, 60, "a rebalance")
    _publish(stack, settings.topics.requests, scenario_lines[half:])
    total = len(scenario_lines)
    wait_for(lambda: first.stats.processed + second.stats.processed >= total, 90, "all events")
    for w in (first, second):
        w.stop()
    for t in threads:
        t.join(30)

    reference = AccountPipeline(detectors)
    decoder = EventDecoder()
    for line in scenario_lines:
        reference.process(decoder.decode(line))
    seen_before = {account_key(line) for line in scenario_lines[:half]}
    moved = [a for a in second.pipeline.accounts() if a in seen_before]
    assert moved, "the new owner holds no account with history"
    for account in moved:
        # The span since first seen can only match if the history came along.
        got = second.pipeline.account_features(account)["active_span_hours"]  # type: ignore[attr-defined]
        assert got == reference.account_features(account)["active_span_hours"]  # type: ignore[index]
    assert not set(first.pipeline.accounts()) & set(second.pipeline.accounts())
