"""The interface between the Kafka/replay edges and detection.

The worker and ``replay`` both drive a :class:`Pipeline`: feed every valid event to
``process`` in order, and every so often ``drain`` what changed so the edge can
persist it (Redis, ``abuse-alerts``) before offsets are committed. Keeping the
interface this narrow is what lets one detector code path serve streaming and
offline replay alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Alert, Cluster, Label
from distillguard.settings import Settings

NO_ALERTS: tuple[Alert, ...] = ()


@dataclass(slots=True)
class PipelineOutput:
    """What changed since the previous drain, for the edge to persist."""

    counts: Counter[str] = field(default_factory=Counter)
    risks: list[AccountRisk] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.risks or self.alerts or self.clusters)


class Pipeline(Protocol):
    """Anything that turns events into risks and alerts."""

    def process(self, event: RequestEvent) -> tuple[Alert, ...]:
        """Learn from and score one event; return alerts it raised or updated (usually none)."""
        ...

    def drain(self) -> PipelineOutput:
        """Hand over (and forget) what changed since the last drain."""
        ...

    def risk(self, account_id: str) -> AccountRisk:
        """The account's current risk (low, no reasons, for an account never seen)."""
        ...

    def learn_label(self, label: Label) -> None:
        """Learn from an analyst's verdict (feedback stream)."""
        ...

    def accounts(self) -> list[str]:
        """Every account the pipeline holds state for."""
        ...


@runtime_checkable
class Checkpointable(Protocol):
    """A pipeline whose state the worker checkpoints: per account, and shared.

    Per-account state is written with every batch under the account's partition, so
    it moves with the partition on a rebalance; shared state (population, models) is
    written every few seconds. All formats must be safe to load (no pickle).
    """

    def snapshot_shared(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...

    def snapshot_accounts(self, account_ids: list[str]) -> dict[str, bytes]: ...

    def restore_accounts(self, states: dict[str, bytes]) -> None: ...


class CountingPipeline:
    """Counts requests per account; raises nothing.

    The smallest pipeline that exercises the edges: the worker's exactly-once
    guarantees are tested with it, since a count is wrong the moment an event is lost
    or counted twice.

    Examples
    --------
    >>> from distillguard.events import RequestEvent
    >>> p = CountingPipeline()
    >>> for i in range(3):
    ...     _ = p.process(RequestEvent(event_id=str(i), ts=0.0, account_id="a", model="m",
    ...                                input_tokens=1, output_tokens=1, status=200))
    >>> p.drain().counts
    Counter({'a': 3})
    >>> bool(p.drain())
    False
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._seen: set[str] = set()

    def process(self, event: RequestEvent) -> tuple[Alert, ...]:
        self._counts[event.account_id] += 1
        self._seen.add(event.account_id)
        return NO_ALERTS

    def drain(self) -> PipelineOutput:
        out = PipelineOutput(counts=self._counts)
        self._counts = Counter()
        return out

    def risk(self, account_id: str) -> AccountRisk:
        return AccountRisk(account_id=account_id)

    def learn_label(self, label: Label) -> None:
        """Counting has nothing to learn."""

    def accounts(self) -> list[str]:
        return list(self._seen)


def build_pipeline(settings: Settings) -> Pipeline:
    """The pipeline the worker and ``replay`` run, chosen by ``detectors.pipeline`` in settings.

    ``account`` (default): per-account features, scorers and alerts
    (:class:`~distillguard.detectors.account_pipeline.AccountPipeline`); ``counting``:
    the counter above, for tests of the edges; ``linked``: the account pipeline
    composed with the hydra linkage stage (:class:`~distillguard.detectors.linkage.LinkedPipeline`).
    """
    kind = settings.detectors.pipeline
    if kind == "counting":
        return CountingPipeline()
    if kind == "account":
        # imported here: account_pipeline imports this module's PipelineOutput
        from distillguard.detectors.account_pipeline import AccountPipeline

        return AccountPipeline(settings.detectors)
    if kind == "linked":
        # account detectors composed with hydra linkage (detectors/linkage/)
        from distillguard.detectors.account_pipeline import AccountPipeline
        from distillguard.detectors.linkage import LinkageStage, LinkedPipeline

        # detectors.linkage of the one settings object: default.yaml, --config files and
        # DISTILLGUARD_DETECTORS__LINKAGE__<KEY> all reach the stage through it.
        linkage = LinkageStage(settings.detectors.linkage)
        return LinkedPipeline(AccountPipeline(settings.detectors), linkage)
    raise ValueError(f"unknown detectors.pipeline {kind!r}")
