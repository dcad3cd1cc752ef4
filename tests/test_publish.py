"""Publishing never drops a record silently: failures surface at flush, sizes are bounded.

Against a real embedded broker (Tansu) of this module's own, so a test may stop it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from distillguard.infra import EmbeddedStack
from distillguard.settings import Topics
from distillguard.stream.admin import ensure_topics
from distillguard.stream.dead_letter import (
    ORIGINAL_SHA256,
    TRUNCATED,
    DeadLetters,
    read_headers,
)
from distillguard.stream.producer import EventPublisher, PublishFailed, RecordTooLarge
from tests.conftest import ROOT
from tests.helpers.synthetic import valid_event


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack() as s:
        yield s


@pytest.fixture
def topics(stack: EmbeddedStack) -> Topics:
    tag = uuid.uuid4().hex[:8]
    t = Topics(requests=f"pub-{tag}", dead_letter=f"pub-{tag}.dlq", alerts=f"pub-{tag}.al")
    ensure_topics(stack.bootstrap, t)
    return t


def read_all(bootstrap: str, topic: str, expect: int) -> list[ConsumerRecord]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    out = []
    for message in consumer:
        out.append(message)
        if len(out) >= expect:
            break
    consumer.close()
    return out


def test_flush_counts_what_the_broker_acknowledged(stack: EmbeddedStack, topics: Topics) -> None:
    with EventPublisher(stack.bootstrap, topics.requests) as pub:
        for i in range(50):
            pub.send(f"acct-{i % 5}", orjson.dumps(valid_event(i, f"acct-{i % 5}")))
        assert pub.flush() == 50
        assert pub.flush() == 0  # counted once
    assert len(read_all(stack.bootstrap, topics.requests, 50)) == 50


def test_failed_sends_raise_at_flush_instead_of_vanishing(tmp_path: Path) -> None:
    """The broker goes away with records queued: kafka-python's flush returns quietly."""
    with EmbeddedStack(workdir=tmp_path) as doomed:
        pub = EventPublisher(doomed.bootstrap, doomed.topics.alerts, delivery_timeout_ms=1500)
        pub.send("k", b"first")
        assert pub.flush() == 1
        for proc in doomed.procs:  # the broker and Valkey die; the publisher does not know
            proc.kill()
            proc.wait()
        for i in range(3):
            pub.send("k", f"lost {i}".encode())
        with pytest.raises(PublishFailed) as info:
            pub.flush(timeout_s=20)
        assert (info.value.failed, info.value.attempted) == (3, 3)
        assert "3 of 3 records were not published" in str(info.value)
        assert info.value.first_error  # the cause, e.g. KafkaTimeoutError: ... expired
        assert pub.flush() == 0  # reported once; the next window starts clean
        pub._producer.close(timeout=1)


def test_a_record_over_the_size_limit_is_refused_at_send(
    stack: EmbeddedStack, topics: Topics
) -> None:
    with EventPublisher(stack.bootstrap, topics.requests, max_request_size=4096) as pub:
        with pytest.raises(RecordTooLarge, match="exceeds the 4096-byte producer limit"):
            pub.send("k", b"x" * 8192)
        pub.send("k", b"x" * 1000)
        assert pub.flush() == 1


def test_a_too_big_dead_letter_is_truncated_and_says_so(
    stack: EmbeddedStack, topics: Topics
) -> None:
    limit = 64 * 1024
    original = orjson.dumps(valid_event(1, "acct") | {"prompt": "y" * 200_000})
    with EventPublisher(stack.bootstrap, topics.alerts, max_request_size=limit) as pub:
        dlq = DeadLetters(pub, topics.dead_letter)
        dlq.send(b"acct", original, "message too big " * 1000, topics.requests, 3, 41)
        dlq.send(b"acct", b"{not json", "not valid JSON", topics.requests, 3, 42)
        dlq.flush()
        assert dlq.truncated == 1
    big, small = sorted(
        read_all(stack.bootstrap, topics.dead_letter, 2), key=lambda m: int(m.offset)
    )
    headers = read_headers(big.headers)
    assert len(big.value) < limit and original.startswith(big.value) and len(big.value) > 60_000
    assert headers[TRUNCATED] == str(len(original))
    assert headers[ORIGINAL_SHA256] == hashlib.sha256(original).hexdigest()
    assert headers["dlq.source.offset"] == "41" and big.key == b"acct"
    assert len(headers["dlq.reason"]) <= 4096
    # A dead letter that fits travels byte for byte, without truncation headers.
    assert small.value == b"{not json" and TRUNCATED not in read_headers(small.headers)


def _produce(
    stack: EmbeddedStack, path: Path, topic: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    return subprocess.run(
        [sys.executable, "-m", "distillguard", "produce", str(path), "--topic", topic],
        env=clean | stack.env() | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_produce_reports_the_true_count_and_fails_on_a_refused_line(
    stack: EmbeddedStack, topics: Topics, tmp_path: Path
) -> None:
    lines = [orjson.dumps(valid_event(i, "acct")) for i in range(5)]
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(lines) + b"\n")
    done = _produce(stack, good, topics.requests)
    assert done.returncode == 0, done.stderr
    assert f"published 5 events to {topics.requests}" in done.stdout

    bad = tmp_path / "bad.jsonl"
    huge = orjson.dumps(valid_event(9, "acct") | {"prompt": "z" * 10_000})
    bad.write_bytes(b"\n".join([*lines[:2], huge, *lines[2:]]) + b"\n")
    failed = _produce(stack, bad, topics.requests, DISTILLGUARD_TOPICS__MAX_MESSAGE_BYTES="4096")
    assert failed.returncode != 0
    assert "1 of 6 lines of" in failed.stderr and "line 3:" in failed.stderr
    assert "published 6" not in failed.stdout
    # The lines that fit were published: 5 from the first run, 5 from the second.
    assert len(read_all(stack.bootstrap, topics.requests, 10)) == 10
