"""SIGKILLs of either stage of the split topology change no result (``make chaos``).

Two account workers and the cluster worker run as processes over the ``small``
scenario; the cluster worker and each account worker are killed with SIGKILL at
random moments, several times, and restarted. An account worker that dies re-reads
from its checkpoint and sends hand-off records again; the cluster worker drops those
by their source offsets, and itself resumes from its own checkpoint. The result is
one process's: the same clusters and cluster alerts, risks within 0.05.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis

from distillguard.infra import EmbeddedStack
from tests.conftest import ROOT
from tests.helpers.outcomes import from_store
from tests.test_topology import (
    _concurrently,
    _one_process,
    _published,
    _run,
    _settings,
    small_lines,
)

pytestmark = pytest.mark.chaos
__all__ = ["small_lines"]  # the fixture, shared with test_topology

KILLS = 8


def test_killed_stages_change_no_result(stack: EmbeddedStack, small_lines: list[bytes]) -> None:
    topics = _published(stack, small_lines, "tk")
    reference = _one_process(stack, topics, 7)

    group = f"kill-{uuid.uuid4().hex[:8]}"
    db = 8
    client = redis.Redis.from_url(_settings(stack, topics, db, group).redis_url)
    client.flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILLGUARD_")}
    env.update(
        DISTILLGUARD_KAFKA_BOOTSTRAP=stack.bootstrap,
        DISTILLGUARD_REDIS_URL=_settings(stack, topics, db, group).redis_url,
        DISTILLGUARD_TOPICS__REQUESTS=topics.requests,
        DISTILLGUARD_TOPICS__DEAD_LETTER=topics.dead_letter,
        DISTILLGUARD_TOPICS__ALERTS=topics.alerts,
        DISTILLGUARD_WORKER__GROUP_ID=group,
        DISTILLGUARD_WORKER__CHECKPOINT_INTERVAL_S="0.5",
    )

    def spawn(stage: str, instance: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "distillguard", "worker", "--stage", stage],
            env={**env, "DISTILLGUARD_WORKER__INSTANCE": instance},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    procs = {"a0": spawn("account", "a0"), "a1": spawn("account", "a1"), "": spawn("cluster", "")}
    rng = random.Random(20261202)
    targets = ["", "a0", "", "a1", "", "a0", "", ""][:KILLS]
    for target in targets:
        time.sleep(rng.uniform(1.0, 4.0))
        proc = procs[target]
        assert proc.poll() is None, f"worker {target or 'cluster'} exited by itself"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        procs[target] = spawn("cluster" if target == "" else "account", target)
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        proc.wait(timeout=60)

    # Finish the stream from the checkpoints the killed processes left.
    accounts = [
        _settings(stack, topics, db, group, stage="account", instance=i) for i in ("a0", "a1")
    ]
    _concurrently(accounts, client)
    _run(_settings(stack, topics, db, group, stage="cluster"), client)
    killed = from_store(client)
    client.flushdb()

    assert reference.clusters and reference.cluster_alerts
    assert killed.memberships() == reference.memberships()
    assert set(killed.cluster_alerts.values()) == set(reference.cluster_alerts.values())
    assert killed.differences(reference, tolerance=0.05) == []
