"""Prometheus metrics: request counts and latency by route, plus the worker's counters.

The worker (another process) publishes its counters in the Redis hash
``dg:worker:stats``; each numeric field is exported at scrape time as
``distillguard_worker_<field>`` (e.g. ``distillguard_worker_lag``,
``distillguard_worker_processed``). Absent hash, absent gauges. Each worker also
reports its own lag (``dg:worker:lag``): ``distillguard_worker_instance_lag{worker=
"account:w1"}``, and ``distillguard_worker_lag`` / ``distillguard_worker_cluster_lag``
are the sums over the workers of each stage.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "distillguard_api_requests", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "distillguard_api_request_seconds",
    "Time to the end of the response",
    ["route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)


class MetricsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): a few microseconds on the hot path."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            LATENCY.labels(path).observe(time.perf_counter() - start)


class _WorkerStats(Collector):
    def __init__(
        self, stats: Mapping[str, float], redis_up: bool, lags: Mapping[str, float]
    ) -> None:
        self.stats = stats
        self.redis_up = redis_up
        self.lags = lags

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "distillguard_redis_up", "Redis reachable at scrape time", value=float(self.redis_up)
        )
        for field, value in sorted(self.stats.items()):
            name = "distillguard_worker_" + re.sub(r"[^a-zA-Z0-9_]", "_", field)
            yield GaugeMetricFamily(
                name, f"worker stat {field!r} from dg:worker:stats", value=value
            )
        if self.lags:
            per_worker = GaugeMetricFamily(
                "distillguard_worker_instance_lag",
                "records behind, per worker that reported lately (dg:worker:lag)",
                labels=["worker"],
            )
            for worker, lag in sorted(self.lags.items()):
                per_worker.add_metric([worker], lag)
            yield per_worker


def render(
    stats: Mapping[str, float], redis_up: bool, lags: Mapping[str, float] | None = None
) -> bytes:
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_WorkerStats(stats, redis_up, lags or {}))
    return generate_latest(REGISTRY) + generate_latest(extra)
