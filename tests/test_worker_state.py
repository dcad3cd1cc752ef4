"""A restarted worker continues with the same detector scores as one that never stopped."""

from __future__ import annotations

import uuid

import pytest
import redis
from distillguard.detectors.pipeline import Checkpointable, build_pipeline
from distillguard.sim.engine import simulate
from distillguard.sim.scenario import load_scenario
from distillguard.stream.admin import ensure_topics
from distillguard.stream.producer import EventPublisher
from distillguard.stream.publish_file import account_key
from distillguard.stream.worker import Worker

from distillguard.events import EventDecoder
from distillguard.infra import EmbeddedStack
from distillguard.settings import Settings, Topics
from distillguard.settings import Worker as WorkerSettings


@pytest.fixture(scope="module")
def scenario_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("sim") / "events.jsonl"
    simulate(load_scenario("small"), out, out.with_name("labels.jsonl"))
    return out.read_bytes().splitlines()[:24_000]


def _settings(stack: EmbeddedStack, topics: Topics, group: str) -> Settings:
    return Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=stack.redis_url,
        topics=topics,
        worker=WorkerSettings(group_id=group, batch_max_records=1000),
    )


def _publish(stack: EmbeddedStack, topic: str, lines: list[bytes]) -> None:
    with EventPublisher(stack.bootstrap, topic) as pub:
        for line in lines:
            pub.send(account_key(line), line)


def test_graceful_restart_gives_the_same_scores_as_an_uninterrupted_run(
    stack: EmbeddedStack, redis_client: redis.Redis, scenario_lines: list[bytes]
) -> None:
    tag = uuid.uuid4().hex[:8]
    # One partition, so the worker sees events in exactly the file's order.
    topics = Topics(
        requests=f"st-{tag}", dead_letter=f"st-{tag}.dlq", alerts=f"st-{tag}.al", partitions=1
    )
    ensure_topics(stack.bootstrap, topics)
    settings = _settings(stack, topics, f"g-{tag}")

    reference = build_pipeline(settings)
    assert isinstance(reference, Checkpointable)
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
