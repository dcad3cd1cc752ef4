"""An account pipeline composed with the linkage stage, as one :class:`Pipeline`.

Both see every event. Alerts of both are returned and drained together; an account
in an alerted cluster reports the higher of its own risk and its cluster's, with a
``cluster_membership`` reason and its ``cluster_id``, so a platform service asking
about one low-and-slow member of a hydra sees the hydra. Analysts' verdicts reach
both: the account detectors' label-trained model, and the links (``labels.py``: a
case of links around confirmed accounts is alerted, a dismissed account inherits no
cluster's risk).
"""

from __future__ import annotations

from collections.abc import Iterable

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.cluster_timeline import cluster_timeline
from distillguard.detectors.linkage.handoff import Judge, member_judges
from distillguard.detectors.linkage.labels import AnalystLinks
from distillguard.detectors.linkage.members import MemberTable
from distillguard.detectors.linkage.stage import LinkageStage
from distillguard.detectors.pipeline import BatchOutput, Pipeline
from distillguard.detectors.state import decode_shared, encode_shared
from distillguard.events import RequestEvent
from distillguard.records import (
    AccountRisk,
    Alert,
    Cluster,
    ClusterRisk,
    Label,
    Raised,
    combine_risk,
    iso,
)


class LinkedPipeline:
    """``account`` pipeline + ``linkage`` stage, delegating to both.

    Parameters
    ----------
    account
        Any :class:`~distillguard.detectors.pipeline.Pipeline` (per-account detectors).
    linkage
        The linkage stage; a default one when omitted. It must read the account
        pipeline's clock (one watermark for both). Unless it already has one, it is
        given the account pipeline's risk as ``member_risk``.
    behaviour
        Feed the account pipeline's ``account_features`` to the stage as behaviour
        evidence (throttled per account). Off by default: it is weak evidence that
        the shipped figures were measured without.
    timeline_members
        Members shown in a drained cluster's timeline (``BatchOutput.timelines``), if
        the account pipeline keeps request times (``request_times``); the most active.
    publish_raised
        Drain what lifts touched accounts (``BatchOutput.raised``) instead of their
        combined risks: the cluster stage of a split topology, whose account side is a
        :class:`~.members.MemberTable` and whose accounts' own risks the account stage
        reports.

    Examples
    --------
    >>> from distillguard.detectors.pipeline import CountingPipeline
    >>> from distillguard.events import RequestEvent
    >>> p = LinkedPipeline(CountingPipeline())
    >>> for i in range(8):
    ...     _ = p.process(RequestEvent(event_id=str(i), ts=100.0 * i, account_id=f"a{i}",
    ...                                model="m", input_tokens=1, output_tokens=1, status=200,
    ...                                payment_fingerprint="card-1", ip=f"198.51.100.{i}"))
    >>> out = p.drain()
    >>> p.clock is p.linkage.clock
    True
    >>> [(c.cluster_id, len(c.members)) for c in out.clusters], out.alerts[0].subject_type
    ([('clu_1', 8)], 'cluster')
    >>> r = p.risk("a3")
    >>> r.cluster_id, r.level, r.reasons[0].signal
    ('clu_1', 'high', 'cluster_membership')
    >>> p.risk("nobody").risk
    0.0
    """

    def __init__(
        self,
        account: Pipeline,
        linkage: LinkageStage | None = None,
        *,
        behaviour: bool = False,
        timeline_members: int = 40,
        publish_raised: bool = False,
    ) -> None:
        self.account = account
        self.clock = account.clock
        self.linkage = linkage if linkage is not None else LinkageStage(clock=account.clock)
        if self.linkage.clock is not self.clock:
            raise ValueError("the linkage stage must read the account pipeline's clock")
        if self.linkage.member_risk is None:
            self.linkage.member_risk = self._account_risk
        cfg = self.linkage.config
        extraction: Judge | None
        setting: Judge | None
        if isinstance(account, MemberTable):  # the cluster stage: scores as forwarded
            extraction = account.extraction if account.judges else None
            setting = account.setting if account.judges and account.judges_setting else None
        else:
            extraction, setting = member_judges(
                account, cfg.extraction_weights, cfg.shared_setting_weights
            )
        if self.linkage.member_extraction is None and extraction is not None:
            self.linkage.member_extraction = extraction
            if self.linkage.member_setting is None and setting is not None:
                self.linkage.member_setting = setting
        self._publish_raised = publish_raised
        #: accounts given a verdict since the last drain: reported again at once (a
        #: dismissed member's cluster stops speaking for it)
        self._relabelled: set[str] = set()
        self._published: dict[str, list[str]] = {}
        self.labels = self._new_labels()
        self._label_alerts: list[Alert] = []
        self._label_clusters: list[Cluster] = []
        features = getattr(account, "account_features", None)
        self._features = features if behaviour and callable(features) else None
        made = getattr(account, "requests_made", None)
        times = getattr(account, "request_times", None)
        self._timeline = (made, times) if callable(made) and callable(times) else None
        self._timeline_members = timeline_members

    def _new_labels(self) -> AnalystLinks:
        cfg = self.linkage.config
        return AnalystLinks(cfg.labels, self.linkage.cluster_prefix, cfg.eval_interval_s)

    def _account_risk(self, account_id: str) -> float:
        return self.account.risk(account_id).risk

    def process(self, event: RequestEvent) -> bool:
        own = self.account.process(event)  # observes the clock first: linkage reads it
        linked = self.linkage.process(event)
        if self._features is not None:
            aid, ts = event.account_id, float(event.ts)
            if self.linkage.wants_features(aid, ts):
                features = self._features(aid)
                if features:
                    self.linkage.observe_features(aid, features, ts)
        labelled = self.clock.now >= self.labels.next_eval and self._evaluate_labels()
        return own or bool(linked) or labelled

    def _evaluate_labels(self) -> bool:
        alerts, clusters = self.labels.evaluate(self.clock.now, self.linkage.candidate_links())
        self._label_alerts.extend(alerts)
        self._label_clusters.extend(clusters)
        return bool(alerts)

    def drain(self) -> BatchOutput:
        out = self.account.drain()
        out.alerts.extend(self.linkage.drain_alerts())
        out.alerts.extend(self._label_alerts)
        clusters = self.linkage.drain_clusters()
        clusters.extend(self._label_clusters)
        self._label_alerts, self._label_clusters = [], []
        out.clusters.extend(clusters)
        if self._timeline is not None:
            made, times = self._timeline
            cap = self._timeline_members
            out.timelines.extend(
                cluster_timeline(c, made, times, cap) for c in clusters if c.members
            )
        touched, self._relabelled = self._relabelled, set()
        for cluster in clusters:
            touched.update(cluster.members)
            touched.update(self._published.pop(cluster.cluster_id, ()))
            if cluster.members:
                self._published[cluster.cluster_id] = cluster.members
        if self._publish_raised:
            now = self.linkage.now
            at = iso(now) if now is not None else None
            out.raised = [
                ClusterRisk(account_id=a, raised=self.raised(a), updated_at=at)
                for a in sorted(touched)
            ]
            return out
        risks = []
        for r in out.risks:
            aid = r.account_id
            if (
                aid in touched
                or self.linkage.cluster_of(aid) is not None
                or self.labels.risk(aid) is not None
            ):
                touched.discard(r.account_id)
                r = self.risk(r.account_id)
            risks.append(r)
        risks.extend(self.risk(a) for a in sorted(touched))
        out.risks = risks
        return out

    def risk(self, account_id: str) -> AccountRisk:
        now = self.linkage.now
        return combine_risk(
            self.account.risk(account_id),
            self.raised(account_id),
            iso(now) if now is not None else None,
        )

    def raised(self, account_id: str) -> list[Raised]:
        """What lifts the account above its own risk: its cluster, an analysts' case
        (none for an account an analyst dismissed: no cluster speaks for it)."""
        if self.labels.is_dismissed(account_id):
            return []
        raised: list[Raised] = []
        boost = self.linkage.cluster_risk(account_id)
        reason = self.linkage.cluster_reason(account_id) if boost > 0 else None
        if reason is not None:
            cluster_id = self.linkage.cluster_of(account_id)
            raised.append(Raised(risk=boost, reason=reason, cluster_id=cluster_id))
        labelled = self.labels.risk(account_id)
        if labelled is not None:
            risk, why, cluster_id = labelled
            raised.append(Raised(risk=risk, reason=why, cluster_id=cluster_id))
        return raised

    def learn_label(self, label: Label) -> None:
        """Teach the account detectors and the links; the links act at the next event."""
        lifted = bool(self.raised(label.account_id))
        self.account.learn_label(label)
        self.labels.learn(label.account_id, label.label == "distiller", self.clock.now)
        if lifted:
            self._relabelled.add(label.account_id)

    def account_features(self, account_id: str) -> dict[str, float] | None:
        """The account stage's named signals (charts, investigations), if it keeps them."""
        features = getattr(self.account, "account_features", None)
        return features(account_id) if callable(features) else None

    def forget(self, account_ids: Iterable[str]) -> None:
        """Drop per-account state (a partition moved); linkage evidence is global, kept."""
        self.account.forget(account_ids)

    # -- checkpoints (the Pipeline protocol) -----------------------------------------------
    # Per-account state is the account pipeline's. The linkage graph is global (a value's
    # holders span every partition), so it travels with the shared checkpoint, one typed
    # msgpack map next to the account pipeline's shared state (``detectors/state.py``).
    # At default scale it is ~2.7 KB per account, written every
    # ``worker.shared_checkpoint_interval_s``.

    def snapshot_shared(self) -> bytes:
        """One shared checkpoint: the clock, the account models, the linkage stage."""
        account = self.account.shared_state() if isinstance(self.account, AccountPipeline) else None
        return encode_shared(
            clock=self.clock.to_state(),
            account=account,
            linkage=self.linkage.to_state(),
            published=self._published,
            labels=self.labels.to_state(),
            members=self.account.to_state() if isinstance(self.account, MemberTable) else None,
        )

    def restore(self, shared: bytes) -> None:
        """Restore a :meth:`snapshot_shared`; ValueError (state unchanged) if it is not one.

        A checkpoint of the account pipeline alone restores its part (the linkage stage
        starts afresh): switching ``detectors.pipeline`` keeps what the models learnt.
        """
        checkpoint = decode_shared(shared)
        if checkpoint.linkage is None and checkpoint.account is None:
            raise ValueError("the checkpoint holds neither account nor linkage state")
        linkage = self.linkage
        if checkpoint.linkage is not None:
            old = self.linkage
            linkage = LinkageStage(
                old.config,
                old.member_risk,
                clock=self.clock,
                cluster_prefix=old.cluster_prefix,
                member_extraction=old.member_extraction,
                member_setting=old.member_setting,
            )
            linkage.restore_state(checkpoint.linkage)
        labels = self._new_labels()
        if checkpoint.labels is not None:
            cfg = linkage.config
            labels = AnalystLinks.from_state(
                checkpoint.labels, cfg.labels, linkage.cluster_prefix, cfg.eval_interval_s
            )
        if isinstance(self.account, MemberTable):
            self.account.restore_state(checkpoint.members)  # last step that may raise
        if checkpoint.account is not None and isinstance(self.account, AccountPipeline):
            self.account.restore_checkpoint(checkpoint)  # last step that may raise
        self.linkage = linkage
        self.labels = labels
        self._published = {c: list(m) for c, m in checkpoint.published.items()}
        self.clock.restore(checkpoint.clock)

    def snapshot_accounts(self, account_ids: Iterable[str]) -> dict[str, bytes]:
        return self.account.snapshot_accounts(account_ids)

    def restore_accounts(self, states: dict[str, bytes]) -> None:
        self.account.restore_accounts(states)

    def accounts(self) -> list[str]:
        return self.account.accounts()
