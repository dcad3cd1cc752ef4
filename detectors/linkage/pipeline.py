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
from distillguard.detectors.linkage.labels import AnalystLinks
from distillguard.detectors.linkage.stage import LinkageStage
from distillguard.detectors.pipeline import BatchOutput, Pipeline
from distillguard.detectors.state import decode_shared, encode_shared
from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Alert, Cluster, Label, Reason, iso, level_for


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
    ) -> None:
        self.account = account
        self.clock = account.clock
        self.linkage = linkage if linkage is not None else LinkageStage(clock=account.clock)
        if self.linkage.clock is not self.clock:
            raise ValueError("the linkage stage must read the account pipeline's clock")
        if self.linkage.member_risk is None:
            self.linkage.member_risk = self._account_risk
        signals = getattr(account, "signal_logodds", None)
        #: per-signal weights of a member's extraction score (``extraction_weights``)
        self._extraction_weights = self.linkage.config.extraction_weights
        self._signals = signals if callable(signals) else None
        # Judged only when the account detectors have a rule that can see extraction: a
        # pipeline configured without rules would otherwise call every cluster honest.
        rules = getattr(getattr(account, "rules", None), "rules", ())
        sees = any(self._extraction_weights.get(r.signal, 0.0) > 0 for r in rules)
        if self.linkage.member_extraction is None and self._signals is not None and sees:
            self.linkage.member_extraction = self._account_extraction
            if self.linkage.member_setting is None and self.linkage.config.shared_setting_weights:
                self.linkage.member_setting = self._account_setting
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

    def _account_extraction(self, account_id: str) -> float:
        """The member's extraction score: its rule signals' log-odds, as captured when
        the account was last scored, weighted by ``extraction_weights`` (a dict lookup
        per signal; called only for sampled members of changed clusters)."""
        assert self._signals is not None
        weights = self._extraction_weights
        return sum(weights.get(s, 0.0) * v for s, v in self._signals(account_id).items())

    def _account_setting(self, account_id: str) -> float:
        """The member's client settings' log-odds (``shared_setting_weights``): counted
        by the stage only when the cluster's members share them."""
        assert self._signals is not None
        weights = self.linkage.config.shared_setting_weights
        return sum(weights.get(s, 0.0) * v for s, v in self._signals(account_id).items())

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
        touched: set[str] = set()
        for cluster in clusters:
            touched.update(cluster.members)
            touched.update(self._published.pop(cluster.cluster_id, ()))
            if cluster.members:
                self._published[cluster.cluster_id] = cluster.members
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
        base = self.account.risk(account_id)
        if self.labels.is_dismissed(account_id):
            return base  # an analyst said benign: no cluster speaks for it
        raised: list[tuple[float, Reason, str | None]] = []
        boost = self.linkage.cluster_risk(account_id)
        reason = self.linkage.cluster_reason(account_id) if boost > 0 else None
        if reason is not None:
            raised.append((boost, reason, self.linkage.cluster_of(account_id)))
        labelled = self.labels.risk(account_id)
        if labelled is not None:
            raised.append(labelled)
        if not raised:
            return base
        raised.sort(key=lambda r: -r[0])
        top, _, _ = raised[0]
        cluster_id = next((c for _, _, c in raised if c is not None), None)
        if top <= base.risk:
            reasons = [*base.reasons, *(r for _, r, _ in raised)]
            risk = base.risk
        else:
            reasons = [*(r for _, r, _ in raised), *base.reasons]
            risk = top
        now = self.linkage.now
        return AccountRisk(
            account_id=account_id,
            risk=risk,
            level=level_for(risk),
            reasons=reasons,
            cluster_id=cluster_id,
            updated_at=base.updated_at or (iso(now) if now is not None else None),
        )

    def learn_label(self, label: Label) -> None:
        """Teach the account detectors and the links; the links act at the next event."""
        self.account.learn_label(label)
        self.labels.learn(label.account_id, label.label == "distiller", self.clock.now)

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
