"""``simulate --to-kafka``: live traffic reaches the real (embedded) broker, keyed by account."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition

from distillguard.events import EventDecoder

SCENARIO = (
    "name: live\nseed: 5\nstart: '2026-11-16T00:00:00Z'\ndays: 0.1\n"
    "models: [{name: m, role: flagship}]\n"
    "benign: {hobbyist: {accounts: 30}, chat_backend: {accounts: 2, daily_requests: 3000}}\n"
    "campaigns: [{id: b1, archetype: bulk_distiller, accounts: 1, daily_requests: 6000}]\n"
)


def test_simulate_to_kafka_publishes_every_event_keyed_by_account(lane, tmp_path: Path) -> None:
    scenario = tmp_path / "live.yaml"
    scenario.write_text(SCENARIO)
    labels, events = tmp_path / "labels.jsonl", tmp_path / "events.jsonl"
    rate = 4000.0
    started = time.monotonic()
    proc = lane.spawn(
        "simulate",
        "--scenario",
        str(scenario),
        "--to-kafka",
        "--rate",
        str(rate),
        "--out",
        str(events),
        "--labels",
        str(labels),
    )
    _, err = proc.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, err.decode()[-2000:]
    expected = events.read_bytes().splitlines()
    assert len(expected) > 500
    # Pacing: at most `rate` events per second on average (start-up time comes on top).
    assert elapsed >= len(expected) / rate * 0.9

    consumer = KafkaConsumer(
        bootstrap_servers=lane.stack.bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000
    )
    parts = [TopicPartition(lane.topics.requests, p) for p in range(lane.topics.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    got = [(m.key, m.value) for m in consumer]
    consumer.close()
    assert sorted(v for _, v in got) == sorted(expected)
    dec = EventDecoder()
    for key, value in got:
        assert key.decode() == dec.decode(value).account_id
    accounts = {orjson.loads(x)["account_id"] for x in labels.read_bytes().splitlines()}
    assert {k.decode() for k, _ in got} == accounts
