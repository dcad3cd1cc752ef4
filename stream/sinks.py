"""Where the worker persists pipeline output beyond counts (risks, alerts, clusters)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from distillguard.detectors.pipeline import Pipeline, PipelineOutput
from distillguard.stream.worker import OutputSink

from distillguard.records import Alert
from distillguard.settings import Settings
from distillguard.store.writer import AlertWriter

FeatureSource = Callable[[str], "dict[str, float] | None"]


def alert_store_sink(
    client: redis.Redis, settings: Settings, features_of: FeatureSource | None = None
) -> OutputSink:
    """Risks, deduplicated alerts, clusters and chart data into the Redis alert store.

    ``features_of`` (account -> its named signals now) adds a chart point for every
    account whose risk changed and is above ``low``: the console's activity charts
    then follow an account between alerts, not only at the moments it alerted.
    """
    writer = AlertWriter.from_settings(client, settings)

    def write(out: PipelineOutput) -> list[Alert]:
        features = None
        if features_of is not None:
            alerting = {a.subject_id for a in out.alerts if a.subject_type == "account"}
            features = {
                r.account_id: f
                for r in out.risks
                if r.level != "low"
                and r.account_id not in alerting
                and (f := features_of(r.account_id))
            }
        return writer.write(out.risks, out.alerts, out.clusters, features=features)

    return write


def default_sink(settings: Settings, pipeline: Pipeline | None = None) -> OutputSink:
    features_of = getattr(pipeline, "account_features", None)
    return alert_store_sink(redis.Redis.from_url(settings.redis_url), settings, features_of)
