"""The interface between the Kafka/replay edges and detection.

The worker and ``replay`` both drive a :class:`Pipeline`: feed every valid event to
``process`` in order, and every so often ``drain`` what changed so the edge can
persist it (Redis, ``abuse-alerts``) before offsets are committed. Keeping the
interface this narrow is what lets one detector code path serve streaming and
offline replay alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import msgspec

from distillguard.clock import EventClock
from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Alert, Cluster, ClusterRisk, ClusterTimeline, Label
from distillguard.settings import Settings

if TYPE_CHECKING:
    from distillguard.detectors.linkage.handoff import HandoffEvent


class ChartPoint(msgspec.Struct, frozen=True):
    """An account's named signals at the moment it was scored, for the console's charts.

    Captured by the detector when it scores (not recomputed later by the edge), so
    the point shows exactly what the score was computed from.
    """

    account_id: str
    at: str
    features: dict[str, float]


@dataclass(slots=True)
class BatchOutput:
    """What changed since the previous drain, for the edge to persist in one commit."""

    counts: Counter[str] = field(default_factory=Counter)
    risks: list[AccountRisk] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    chart_points: list[ChartPoint] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    #: the changed clusters' members' last requests (clusters with members only), for
    #: the console's timeline; written with the clusters
    timelines: list[ClusterTimeline] = field(default_factory=list)
    #: accounts whose state the pipeline dropped (idle, over the cap): the edge deletes
    #: their checkpointed state, or a restore would bring them back
    forgotten: list[str] = field(default_factory=list)
    #: split topology, account stage: one hand-off record per processed event, in
    #: processing order, for the worker to send to ``topics.linkage`` before it commits
    handoff: list[HandoffEvent] = field(default_factory=list)
    #: split topology, cluster stage: what lifts each touched account above its own
    #: risk (an empty list: nothing any more), stored beside the account stage's risk
    raised: list[ClusterRisk] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.counts
            or self.risks
            or self.alerts
            or self.chart_points
            or self.clusters
            or self.handoff
            or self.raised
        )


class Pipeline(Protocol):
    """Anything that turns events into risks and alerts: the only interface the edges use.

    The edge (worker or replay) owns the order of events and the checkpoints; the
    pipeline owns detection state. ``drain`` hands over outputs and must not change
    what the pipeline detects later, so when the edge drains (every batch, every
    checkpoint) never changes a result. Snapshots are lossless: a pipeline restored
    from ``snapshot_shared`` + ``snapshot_accounts`` continues exactly as the original.
    All formats are safe to load (no pickle).
    """

    #: the event-time watermark every stage of the pipeline reads
    clock: EventClock

    def process(self, event: RequestEvent) -> bool:
        """Learn from and score one event; True when it raised or updated an alert.

        The alert itself leaves through :meth:`drain` only; the flag lets an edge
        that times first alerts (replay) drain right then.
        """
        ...

    def drain(self) -> BatchOutput:
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

    def snapshot_shared(self) -> bytes:
        """State not owned by one account (models, population, linkage, the clock)."""
        ...

    def restore(self, shared: bytes) -> None:
        """Replace shared state with a :meth:`snapshot_shared`; ValueError leaves it as it was."""
        ...

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        """Per-account state of the given accounts (those tracked), to checkpoint by partition."""
        ...

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        """Load per-account states written by :meth:`snapshot_accounts`."""
        ...

    def forget(self, account_ids: Iterable[str]) -> None:
        """Drop the given accounts' state (their partition moved, or a rollback)."""
        ...


class CountingPipeline:
    """Counts requests per account; raises nothing.

    The smallest pipeline that exercises the edges: the worker's exactly-once
    guarantees are tested with it, since a count is wrong the moment an event is lost
    or counted twice. Counts live in the store (the edge adds each drain's counts in
    its checkpoint), so there is no state to snapshot.

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

    def __init__(self, clock: EventClock | None = None) -> None:
        self.clock = clock if clock is not None else EventClock()
        self._counts: Counter[str] = Counter()
        self._seen: set[str] = set()

    def process(self, event: RequestEvent) -> bool:
        self.clock.advance(event.ts)
        self._counts[event.account_id] += 1
        self._seen.add(event.account_id)
        return False

    def drain(self) -> BatchOutput:
        out = BatchOutput(counts=self._counts)
        self._counts = Counter()
        return out

    def risk(self, account_id: str) -> AccountRisk:
        return AccountRisk(account_id=account_id)

    def learn_label(self, label: Label) -> None:
        """Counting has nothing to learn."""

    def accounts(self) -> list[str]:
        return list(self._seen)

    def snapshot_shared(self) -> bytes:
        return b""

    def restore(self, shared: bytes) -> None:
        """Nothing shared to restore."""

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        return {}

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        self._seen.update(states)

    def forget(self, account_ids: Iterable[str]) -> None:
        self._seen.difference_update(account_ids)


def build_pipeline(settings: Settings) -> Pipeline:
    """The pipeline the worker and ``replay`` run, chosen by ``detectors.pipeline`` in settings.

    ``account`` (default): per-account features, scorers and alerts
    (:class:`~distillguard.detectors.account_pipeline.AccountPipeline`); ``counting``:
    the counter above, for tests of the edges; ``linked``: the account pipeline
    composed with the hydra linkage stage (:class:`~distillguard.detectors.linkage.LinkedPipeline`).
    """
    kind = settings.detectors.pipeline
    pipeline: Pipeline
    stage = settings.worker.stage
    if stage != "all":
        if kind != "linked":
            raise ValueError(
                f"worker.stage {stage!r} splits the linked pipeline: it needs"
                f" detectors.pipeline: linked (not {kind!r})"
            )
        # imported here: these modules import this one's BatchOutput
        from distillguard.detectors.linkage.stages import build_stage

        pipeline = build_stage(settings)
    elif kind == "counting":
        pipeline = CountingPipeline()
    elif kind == "account":
        # imported here: account_pipeline imports this module's BatchOutput
        from distillguard.detectors.account_pipeline import AccountPipeline

        pipeline = AccountPipeline(settings.detectors)
    elif kind == "linked":
        # account detectors composed with hydra linkage (detectors/linkage/)
        from distillguard.detectors.account_pipeline import AccountPipeline
        from distillguard.detectors.linkage import LinkageStage, LinkedPipeline

        account = AccountPipeline(settings.detectors)
        # detectors.linkage of the one settings object: default.yaml, --config files and
        # DISTILLGUARD_DETECTORS__LINKAGE__<KEY> all reach the stage through it. Cluster
        # ids carry the worker's instance name when several workers share a store.
        instance = settings.worker.instance
        linkage = LinkageStage(
            settings.detectors.linkage,
            clock=account.clock,
            cluster_prefix=f"clu_{instance}-" if instance else "clu_",
        )
        pipeline = LinkedPipeline(
            account, linkage, timeline_members=settings.detectors.timeline_members
        )
    else:
        raise ValueError(f"unknown detectors.pipeline {kind!r}")
    v = settings.validation
    pipeline.clock.max_ahead_s = v.max_ahead_s
    pipeline.clock.max_behind_s = v.max_behind_s
    return pipeline
