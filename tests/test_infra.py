"""The embedded stack starts, serves both protocols, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis
from kafka import KafkaAdminClient

from distillguard.infra import EmbeddedStack
from distillguard.settings import Topics
from tests.conftest import process_alive


def test_stack_creates_topics_and_stops_its_processes() -> None:
    topics = Topics(requests="r", dead_letter="r.dlq", alerts="al", partitions=4)
    with EmbeddedStack(topics=topics) as s:
        pids = [p.pid for p in s.procs]
        assert redis.Redis.from_url(s.redis_url).ping()
        admin = KafkaAdminClient(bootstrap_servers=s.bootstrap)
        assert {"r", "r.dlq", "al"} <= set(admin.list_topics())
        described = admin.describe_topics(["r"])
        assert len(described[0]["partitions"]) == 4
        admin.close()
    assert not any(process_alive(pid) for pid in pids)


def test_children_die_when_the_parent_is_killed() -> None:
    code = (
        "from distillguard.infra import EmbeddedStack\n"
        "s = EmbeddedStack().start()\n"
        "print(' '.join(str(p.pid) for p in s.procs), flush=True)\n"
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    import time

    deadline = time.monotonic() + 10
    while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process_alive(p) for p in pids)


def test_valkey_keeps_its_keys_across_restarts(tmp_path: Path) -> None:
    """API keys, alerts and checkpoints live in Valkey: a restart must not lose them."""
    with EmbeddedStack(workdir=tmp_path) as s:
        client = redis.Redis.from_url(s.redis_url)
        client.set("dg:key:one", "kept")
        client.hset("dg:alert:1", mapping={"level": "critical"})
        client.close()
        assert s.valkey is not None
        first = s.valkey.pid
        s.restart_valkey()  # same port, same directory
        assert s.valkey.pid != first and not process_alive(first)
        client = redis.Redis.from_url(s.redis_url)
        assert client.get("dg:key:one") == b"kept"
        assert client.hgetall("dg:alert:1") == {b"level": b"critical"}
        client.set("dg:key:two", "also kept")
        client.close()
    # The whole stack stopped and started again on its directory (infra down / up).
    with EmbeddedStack(workdir=tmp_path) as s:
        client = redis.Redis.from_url(s.redis_url)
        assert client.mget("dg:key:one", "dg:key:two") == [b"kept", b"also kept"]
        client.close()
