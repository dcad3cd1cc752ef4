"""Where the worker persists pipeline output beyond counts (risks, alerts, clusters)."""

from __future__ import annotations

import redis
from distillguard.detectors.pipeline import PipelineOutput
from distillguard.stream.worker import OutputSink

from distillguard.records import Alert
from distillguard.settings import Settings
from distillguard.store.writer import AlertWriter


def alert_store_sink(client: redis.Redis, settings: Settings) -> OutputSink:
    """Risks, deduplicated alerts, clusters and chart data into the Redis alert store."""
    writer = AlertWriter.from_settings(client, settings)

    def write(out: PipelineOutput) -> list[Alert]:
        return writer.write(
            out.risks,
            out.alerts,
            out.clusters,
            features=getattr(out, "features", None),
            prompts=getattr(out, "prompts", None),
        )

    return write


def default_sink(settings: Settings) -> OutputSink:
    return alert_store_sink(redis.Redis.from_url(settings.redis_url), settings)
