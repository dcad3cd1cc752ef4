"""The embedded stack starts, serves both protocols, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys

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
