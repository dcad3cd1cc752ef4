"""Driving a pipeline the way an edge does, for tests that look at alerts as they happen."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from distillguard.detectors.pipeline import Pipeline
from distillguard.events import RequestEvent
from distillguard.records import Alert


def alerts_as_raised(pipe: Pipeline, events: Iterable[RequestEvent]) -> Iterator[Alert]:
    """Each alert right after the event that raised it (drained when ``process`` says so)."""
    for event in events:
        if pipe.process(event):
            yield from pipe.drain().alerts


def raised(pipe: Pipeline, events: Iterable[RequestEvent]) -> list[Alert]:
    return list(alerts_as_raised(pipe, events))
