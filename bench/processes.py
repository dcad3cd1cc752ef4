"""What the benchmarks that time worker processes share: their environment, their CPU."""

from __future__ import annotations

import os
from pathlib import Path

import redis

from distillguard.infra import EmbeddedStack
from distillguard.settings import Topics
from distillguard.store.schema import CLUSTER_STAGE_STATS
from distillguard.stream.checkpoint import STATS_KEY


def worker_env(stack: EmbeddedStack, topics: Topics, group: str) -> dict[str, str]:
    """This environment, pointed at ``stack``'s broker and store, ``topics`` and ``group``."""
    return (
        dict(os.environ)
        | stack.env()
        | {
            "DISTILLGUARD_TOPICS__REQUESTS": topics.requests,
            "DISTILLGUARD_TOPICS__DEAD_LETTER": topics.dead_letter,
            "DISTILLGUARD_TOPICS__ALERTS": topics.alerts,
            "DISTILLGUARD_WORKER__GROUP_ID": group,
        }
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def handled(client: redis.Redis) -> int:
    """Events the workers on this store have checkpointed (processed, refused, repeats),
    the cluster stage's included."""
    fields = ["processed", "rejected", "duplicates"]
    raw = [*client.hmget(STATS_KEY, fields), *client.hmget(CLUSTER_STAGE_STATS, fields)]
    return sum(int(v or 0) for v in raw)
