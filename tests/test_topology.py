"""The split topology on a real broker: several account workers and one cluster worker
reach the clusters, cluster alerts and risks of one process.

``worker.stage: account`` workers (a consumer group over ``api-requests``, each with
a share of the partitions) forward linkage evidence to the hand-off topic; one
``worker.stage: cluster`` worker merges it by event time and runs the linkage. With
linkage kept in one process per account worker, three workers would each see a
third of every campaign and form other clusters (checked below, so the comparison
is not vacuous).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from distillguard.detectors.pipeline import build_pipeline
from distillguard.infra import EmbeddedStack
from distillguard.settings import Settings, Topics
from distillguard.settings import Worker as WorkerSettings
from distillguard.sim.engine import simulate
from distillguard.sim.scenario import load_scenario
from distillguard.store import schema
from distillguard.store.connection import text
from distillguard.stream.admin import ensure_topics
from distillguard.stream.publish_file import publish_lines
from distillguard.stream.sinks import default_sink
from distillguard.stream.worker import Worker, WorkerStats
from tests.helpers.outcomes import Outcome, from_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("sim") / "events.jsonl"
    simulate(load_scenario("small"), out, out.with_name("labels.jsonl"))
    return out.read_bytes().splitlines()


def _settings(
    stack: EmbeddedStack, topics: Topics, db: int, group: str, **worker: object
) -> Settings:
    url = stack.redis_url.rsplit("/", 1)[0] + f"/{db}"
    return Settings(
        kafka_bootstrap=stack.bootstrap,
        redis_url=url,
        topics=topics,
        worker=WorkerSettings(group_id=group, batch_max_records=2000, **worker),  # type: ignore[arg-type]
    )


def _run(settings: Settings, client: redis.Redis, max_idle_s: float = 4.0) -> WorkerStats:
    worker = Worker(settings, build_pipeline(settings), sink=default_sink(settings, client))
    return worker.run(max_idle_s=max_idle_s)


def _concurrently(
    settings: list[Settings], client: redis.Redis, delays: list[float] | None = None
) -> list[WorkerStats]:
    """Run workers side by side, each started ``delays[i]`` seconds after the first
    (account workers of one consumer group share the partitions)."""
    stats: list[WorkerStats | BaseException] = [RuntimeError("not run")] * len(settings)
    delays = delays or [0.0] * len(settings)

    def run(i: int) -> None:
        time.sleep(delays[i])
        try:
            stats[i] = _run(settings[i], redis.Redis.from_url(settings[i].redis_url), 8.0)
        except BaseException as exc:  # reported by the test below
            stats[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(settings))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for s in stats:
        if isinstance(s, BaseException):
            raise s
    return [s for s in stats if isinstance(s, WorkerStats)]


def _published(stack: EmbeddedStack, lines: list[bytes], prefix: str) -> Topics:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"{prefix}-{tag}",
        dead_letter=f"{prefix}-{tag}.dlq",
        alerts=f"{prefix}-{tag}.al",
        partitions=6,
    )
    created = ensure_topics(stack.bootstrap, topics)
    assert topics.linkage_topic in created
    assert publish_lines(stack.bootstrap, topics.requests, lines) == len(lines)
    return topics


def _one_process(stack: EmbeddedStack, topics: Topics, db: int) -> Outcome:
    one = _settings(stack, topics, db, f"one-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(one.redis_url)
    client.flushdb()
    _run(one, client)
    outcome = from_store(client)
    client.flushdb()
    return outcome


def _assert_agree(split: Outcome, reference: Outcome) -> None:
    assert reference.clusters and reference.cluster_alerts  # not vacuous
    assert split.memberships() == reference.memberships()
    assert set(split.cluster_alerts.values()) == set(reference.cluster_alerts.values())
    assert split.differences(reference, tolerance=0.05) == []


def test_account_workers_and_a_cluster_worker_agree_with_one_process(
    stack: EmbeddedStack, small_lines: list[bytes]
) -> None:
    topics = _published(stack, small_lines, "tp")
    reference = _one_process(stack, topics, 5)

    group = f"split-{uuid.uuid4().hex[:8]}"
    workers = [
        _settings(stack, topics, 6, group, stage="account", instance=f"a{i}") for i in range(3)
    ]
    workers.append(_settings(stack, topics, 6, group, stage="cluster"))
    split = redis.Redis.from_url(workers[0].redis_url)
    split.flushdb()
    *accounts, cluster = _concurrently(workers, split)  # live: all four side by side
    assert sum(s.processed for s in accounts) == len(small_lines)
    assert all(s.processed > 0 for s in accounts)  # three workers shared the partitions
    assert cluster.processed == len(small_lines)
    topology = from_store(split)
    lifted = sum(1 for _ in split.scan_iter(match=schema.cluster_risk("*"), count=1000))
    lags = {text(k): text(v).split() for k, v in split.hgetall(schema.WORKER_LAG).items()}
    split.flushdb()

    # each worker reported its own lag (none behind at its clean exit), not one for all
    assert {"account:a0", "account:a1", "account:a2"} <= set(lags)
    assert any(name.startswith("cluster:") for name in lags)
    assert all(float(lag) == 0 for lag, _ in lags.values())

    assert lifted > 0  # members' risks came from the cluster stage's records
    _assert_agree(topology, reference)


def test_an_account_worker_added_mid_stream_changes_no_result(
    stack: EmbeddedStack, small_lines: list[bytes]
) -> None:
    topics = _published(stack, small_lines, "tr")
    reference = _one_process(stack, topics, 7)

    group = f"grow-{uuid.uuid4().hex[:8]}"
    workers = [
        _settings(stack, topics, 8, group, stage="account", instance="a0"),
        _settings(stack, topics, 8, group, stage="cluster"),
        _settings(stack, topics, 8, group, stage="account", instance="a1"),
    ]
    split = redis.Redis.from_url(workers[0].redis_url)
    split.flushdb()
    first, cluster, added = _concurrently(workers, split, delays=[0.0, 0.0, 3.0])
    assert first.processed > 0 and added.processed > 0  # the second one took partitions
    assert first.rollbacks >= 2  # ... in a rebalance of the first one's
    assert cluster.processed == len(small_lines)
    grown = from_store(split)
    split.flushdb()
    _assert_agree(grown, reference)


def test_a_dismissed_member_loses_its_clusters_lift_at_the_next_drain() -> None:
    """In one process and in the cluster stage alike, an analyst's dismissal takes the
    cluster's risk off the account at once, not at its next scoring."""
    from distillguard.detectors.linkage import LinkageStage, LinkedPipeline
    from distillguard.detectors.linkage.handoff import HandoffEvent
    from distillguard.detectors.linkage.members import MemberTable
    from distillguard.detectors.pipeline import CountingPipeline
    from distillguard.records import Label

    def events() -> list[HandoffEvent]:
        return [
            HandoffEvent(
                event_id=str(i),
                ts=1_790_000_000.0 + 100.0 * i,
                account_id=f"a{i}",
                model="m",
                input_tokens=1,
                output_tokens=1,
                status=200,
                payment_fingerprint="card-1",
                ip=f"198.51.100.{i}",
            )
            for i in range(8)
        ]

    one = LinkedPipeline(CountingPipeline())
    table = MemberTable(judges=False, judges_setting=False, times_kept=8)
    split = LinkedPipeline(table, LinkageStage(clock=table.clock), publish_raised=True)
    for p in (one, split):
        for e in events():
            p.process(e)
    first_one, first_split = one.drain(), split.drain()
    assert {r.account_id for r in first_one.risks if r.cluster_id} >= {"a3"}
    lifted = {r.account_id: r.raised for r in first_split.raised}
    assert lifted["a3"] and lifted["a3"][0].cluster_id == "clu_1"

    for p in (one, split):
        p.learn_label(Label(account_id="a3", label="benign"))
    after_one, after_split = one.drain(), split.drain()
    [a3] = [r for r in after_one.risks if r.account_id == "a3"]
    assert a3.cluster_id is None and not any(x.signal == "cluster_membership" for x in a3.reasons)
    assert [r.raised for r in after_split.raised if r.account_id == "a3"] == [[]]
    assert not one.drain().risks and not split.drain().raised  # nothing more to report


def _quiet_then_busy(start: int, count: int, t0: float, step_s: float) -> list[bytes]:
    """``quiet`` sends three requests at ``t0``; ``busy`` the requests ``start`` up to
    ``start + count``, ``step_s`` apart: the clock ``quiet`` is left behind on."""
    import orjson

    def line(i: int, account: str, ts: float) -> bytes:
        return orjson.dumps(
            {
                "event_id": f"{account}-{i}",
                "ts": ts,
                "account_id": account,
                "model": "m-1",
                "input_tokens": 20,
                "output_tokens": 200,
                "status": 200,
                "payment_fingerprint": f"card-{account}",
                "ip": "198.51.100.7",
                "prompt": f"question {i % 97} about item {i}",
            }
        )

    lines = [line(i, "quiet", t0 + i) for i in range(3)] if start == 0 else []
    return lines + [line(i, "busy", t0 + 10.0 + step_s * i) for i in range(start, start + count)]


def test_an_account_the_detectors_let_go_keeps_its_sampler_entry_until_the_sampler_drops_it(
    stack: EmbeddedStack,
) -> None:
    """The account worker's checkpoint of an evicted account: what the pipeline still
    holds (its sampler entry), through a restart, then nothing once the sampler sweeps it.

    Both sweeps run every 65,536 events: the first, 5.5 days in, evicts ``quiet`` from
    the detectors (idle past ``idle_evict_s``, 3 days) while its sampler entry must stay
    (a request the edge still accepts could continue it); the second, after a restart
    and 10.5 days in, is past ``account_ttl_s`` + ``max_behind_s`` and drops it.
    """
    from distillguard.detectors.linkage.handoff import _STAGED, _decode_staged

    t0 = time.time() - 14 * 86_400.0
    step = 7.0  # 70,000 busy requests ~5.7 days
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"ev-{tag}", dead_letter=f"ev-{tag}.dlq", alerts=f"ev-{tag}.al", partitions=1
    )
    ensure_topics(stack.bootstrap, topics)
    publish_lines(stack.bootstrap, topics.requests, _quiet_then_busy(0, 70_000, t0, step))
    settings = _settings(stack, topics, 9, f"ev-{tag}", stage="account")
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    state_key = schema.checkpoint_account_state(settings.worker.group_id, topics.requests, 0)
    first = _run(settings, client)
    assert first.processed == 70_003
    kept = client.hget(state_key, "quiet")
    assert isinstance(kept, bytes) and kept.startswith(_STAGED)
    staged = _decode_staged(kept[len(_STAGED) :])
    assert staged.state is None  # the detectors let it go ...
    assert staged.sampled[0] == 3  # ... its sampler entry (three requests counted) stays

    publish_lines(stack.bootstrap, topics.requests, _quiet_then_busy(70_000, 70_000, t0, step))
    second = _run(settings, client)  # restarted: restores the entry, then sweeps it
    assert second.processed == 70_000
    assert client.hget(state_key, "quiet") is None
    assert client.hget(state_key, "busy") is not None
    client.flushdb()
