"""Where the worker persists pipeline output beyond counts (risks, alerts, clusters)."""

from __future__ import annotations

from distillguard.stream.worker import OutputSink

from distillguard.settings import Settings


def default_sink(settings: Settings) -> OutputSink | None:
    """The store's alert writer, once the store exists; None keeps counts only."""
    return None
