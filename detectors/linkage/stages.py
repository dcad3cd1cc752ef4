"""The two pipelines of a split topology, built from the one settings object.

``worker.stage: account`` runs the account detectors and forwards linkage evidence
(:class:`~.handoff.AccountStage`); ``worker.stage: cluster`` runs the linked pipeline
with a :class:`~.members.MemberTable` in place of the detectors, publishing what lifts
accounts rather than their risks. ``all`` is ``build_pipeline``'s single process.
"""

from __future__ import annotations

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.linkage.handoff import AccountStage, member_judges
from distillguard.detectors.linkage.members import MemberTable
from distillguard.detectors.linkage.pipeline import LinkedPipeline
from distillguard.detectors.linkage.stage import LinkageStage
from distillguard.detectors.pipeline import Pipeline
from distillguard.settings import Settings


def build_stage(settings: Settings) -> Pipeline:
    """The pipeline of ``settings.worker.stage`` (``account`` or ``cluster``)."""
    d = settings.detectors
    cfg = d.linkage
    account = AccountPipeline(d)
    if settings.worker.stage == "account":
        return AccountStage(account, cfg.extraction_weights, cfg.shared_setting_weights, cfg)
    if settings.worker.stage != "cluster":
        raise ValueError(f"no split stage {settings.worker.stage!r}")
    # What the account stage will judge, decided from the same settings it runs on.
    extraction, setting = member_judges(account, cfg.extraction_weights, cfg.shared_setting_weights)
    table = MemberTable(
        judges=extraction is not None,
        judges_setting=setting is not None,
        times_kept=d.request_times_kept,
        idle_evict_s=d.idle_evict_s,
    )
    instance = settings.worker.instance
    linkage = LinkageStage(
        cfg, clock=table.clock, cluster_prefix=f"clu_{instance}-" if instance else "clu_"
    )
    return LinkedPipeline(table, linkage, timeline_members=d.timeline_members, publish_raised=True)
