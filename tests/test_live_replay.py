"""Live processing gives replay's results, run after run, whatever the partitions' timing.

The worker merges its partitions in event time, so two live runs over one topic
agree with each other exactly and with an offline replay of the same file; one
event stamped years away changes nobody else's result.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
import pytest
import redis

from distillguard.detectors.pipeline import build_pipeline
from distillguard.evaluation.replay import decoder_for, replay
from distillguard.infra import EmbeddedStack
from distillguard.settings import Settings, Topics
from distillguard.settings import Worker as WorkerSettings
from distillguard.sim.engine import simulate
from distillguard.sim.scenario import load_scenario
from distillguard.stream.admin import ensure_topics
from distillguard.stream.producer import EventPublisher
from distillguard.stream.publish_file import account_key
from distillguard.stream.sinks import default_sink
from distillguard.stream.worker import Worker
from tests.helpers.outcomes import Outcome, from_replay, from_store

YEAR = 365.25 * 86400


@pytest.fixture(scope="module")
def small_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("sim") / "events.jsonl"
    simulate(load_scenario("small"), out, out.with_name("labels.jsonl"))
    return out.read_bytes().splitlines()


def _topic(stack: EmbeddedStack, partitions: int) -> Topics:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"lr-{tag}",
        dead_letter=f"lr-{tag}.dlq",
        alerts=f"lr-{tag}.al",
        partitions=partitions,
    )
    ensure_topics(stack.bootstrap, topics)
    return topics


def _publish(stack: EmbeddedStack, topic: str, lines: list[bytes]) -> None:
    with EventPublisher(stack.bootstrap, topic) as pub:
        for line in lines:
            pub.send(account_key(line), line)


def _live(stack: EmbeddedStack, topics: Topics, db: int) -> Outcome:
    """One uninterrupted worker over the whole topic, into its own Redis database."""
    url = stack.redis_url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=url,
        topics=topics,
        worker=WorkerSettings(group_id=f"g-{uuid.uuid4().hex[:8]}", batch_max_records=2000),
    )
    worker = Worker(settings, build_pipeline(settings), sink=default_sink(settings, client))
    stats = worker.run(max_idle_s=3)
    assert stats.processed > 0
    outcome = from_store(client)
    client.flushdb()
    return outcome


@pytest.mark.slow
def test_two_live_runs_and_replay_agree(stack: EmbeddedStack, small_lines: list[bytes]) -> None:
    topics = _topic(stack, 6)
    _publish(stack, topics.requests, small_lines)
    first = _live(stack, topics, db=3)
    second = _live(stack, topics, db=4)
    replayed = from_replay(small_lines, Settings())

    assert first.account_alerts and first.cluster_alerts and first.clusters  # not vacuous
    # Two live runs process the merged order: alerts and clusters identical, cluster ids
    # included; stored risks are the last ones reported (a move of >= risk_change), taken
    # at checkpoints, which wall-clock time places: within that of each other.
    assert first.differences(second) == []
    assert first.account_alerts == second.account_alerts
    assert first.cluster_alerts == second.cluster_alerts
    assert first.clusters == second.clusters
    # Replay reads the file in time order: the same results (ties in time may be
    # ordered differently, hence the tolerance on risks).
    assert first.differences(replayed) == []


def test_one_event_years_away_changes_no_other_account(small_lines: list[bytes]) -> None:
    settings = Settings()
    middle = len(small_lines) // 2
    # only the required fields: no card, address or prompt it could share with anybody
    required = ("ts", "model", "input_tokens", "output_tokens", "status")
    template = {k: v for k, v in orjson.loads(small_lines[middle]).items() if k in required}
    injected = list(small_lines)
    # decades either way are absurd by the contract; a month behind the watermark is
    # late by the stream's bound; three days ahead is within it (processed)
    shifts = (10 * YEAR, -10 * YEAR, -30 * 86400.0, 3 * 86400.0)
    for k, shift in enumerate(shifts):
        odd = {**template, "event_id": f"odd-{k}", "account_id": f"odd-account-{k}"}
        odd["ts"] = _epoch(template["ts"]) + shift
        injected.insert(middle + k, orjson.dumps(odd))

    report = replay(injected, build_pipeline(settings), decoder_for(settings))
    reasons = " | ".join(report.rejected_reasons)
    assert report.rejected == 3, reasons
    assert "ahead of the wall clock" in reasons and "behind the stream watermark" in reasons
    assert "odd-account-3" in report.accounts and "odd-account-0" not in report.accounts

    clean = from_replay(small_lines, settings)
    dirty = from_replay(injected, settings)
    for k in range(len(shifts)):
        dirty.risks.pop(f"odd-account-{k}", None)
        dirty.account_alerts.pop(f"odd-account-{k}", None)
    assert dirty.differences(clean, tolerance=0.0) == []


def _epoch(ts: str | float) -> float:
    if isinstance(ts, str):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return float(ts)


def test_the_outcome_comparison_sees_a_difference(small_lines: list[bytes]) -> None:
    """The comparison is not vacuous: dropping one hydra's events changes the outcome."""
    clean = from_replay(small_lines[:40_000], Settings())
    shorter = from_replay(small_lines[:30_000], Settings())
    assert clean.differences(shorter)
