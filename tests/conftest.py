"""Shared fixtures: one real embedded stack (Tansu + Valkey) for the whole session.

Each test gets its own topics and consumer group (unique names) and a flushed Redis
database, so tests stay independent while paying the stack's start-up once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from distillguard.stream.admin import ensure_topics

from distillguard.infra import EmbeddedStack
from distillguard.settings import Topics

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack() as s:
        yield s


def flushed(url: str) -> Iterator[redis.Redis]:
    """A client on an emptied database, emptied again afterwards (redis-py's habit)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(stack: EmbeddedStack) -> Iterator[redis.Redis]:
    yield from flushed(stack.redis_url)


@dataclass
class Lane:
    """A private set of topics and a consumer group on the shared stack."""

    stack: EmbeddedStack
    topics: Topics
    group: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
        env.update(self.stack.env())
        env.update(
            DISTILLGUARD_TOPICS__REQUESTS=self.topics.requests,
            DISTILLGUARD_TOPICS__DEAD_LETTER=self.topics.dead_letter,
            DISTILLGUARD_TOPICS__ALERTS=self.topics.alerts,
            DISTILLGUARD_TOPICS__PARTITIONS=str(self.topics.partitions),
            DISTILLGUARD_WORKER__GROUP_ID=self.group,
        )
        env.update(extra)
        return env

    def spawn(self, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
        """Run ``distillguard ARGS`` as a child process pointed at this lane."""
        return subprocess.Popen(
            [sys.executable, "-m", "distillguard", *args],
            env=self.env(**extra_env),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


@pytest.fixture
def lane(stack: EmbeddedStack, redis_client: redis.Redis) -> Lane:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(
        requests=f"req-{tag}", dead_letter=f"req-{tag}.dlq", alerts=f"alerts-{tag}", partitions=6
    )
    ensure_topics(stack.bootstrap, topics)
    return Lane(stack, topics, f"group-{tag}")


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
