"""Where the worker persists pipeline output beyond counts: the Redis alert store.

The sink writes inside the checkpoint's transaction (``queue_also``), so the store
never holds a risk, alert, chart point or history entry that the checkpoint does not
cover: after a crash they are produced again, once, from the re-read events.
"""

from __future__ import annotations

from typing import Protocol

import redis

from distillguard.detectors.pipeline import BatchOutput
from distillguard.records import Alert
from distillguard.settings import Settings
from distillguard.store.writer import AlertWriter, BeforeCommit, QueueAlso


class OutputSink(Protocol):
    """Persists one checkpoint's output, with the checkpoint, in one transaction."""

    def write(
        self, out: BatchOutput, queue_also: QueueAlso, before_commit: BeforeCommit
    ) -> list[Alert]: ...


class AlertStoreSink:
    """Risks, deduplicated alerts, clusters and chart points into the alert store."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.writer = AlertWriter.from_settings(client, settings)

    def write(
        self, out: BatchOutput, queue_also: QueueAlso, before_commit: BeforeCommit
    ) -> list[Alert]:
        return self.writer.write(
            out.risks,
            out.alerts,
            out.clusters,
            chart_points=out.chart_points,
            timelines=out.timelines,
            raised=out.raised,
            queue_also=queue_also,
            before_commit=before_commit,
        )


def default_sink(settings: Settings, client: redis.Redis | None = None) -> AlertStoreSink:
    return AlertStoreSink(client or redis.Redis.from_url(settings.redis_url), settings)
