"""Hydra detection: clusters of accounts tied together by rare shared evidence.

Composition
-----------
The stage is pure code (no I/O) and is driven exactly like an account pipeline::

    from distillguard.detectors.linkage import LinkageStage, LinkedPipeline

    stage = LinkageStage(settings.detectors.linkage)  # or LinkageConfig(): same defaults
    for event in events:                           # RequestEvent, in event-time order
        alerts = stage.process(event)              # cluster alerts raised/updated now
    stage.drain_alerts()                           # the same alerts, for the edge
    stage.drain_clusters()                         # records.Cluster changed since last drain
    stage.cluster_of("acct_1"), stage.cluster_risk("acct_1")
    blob = stage.snapshot(); stage.restore(blob)   # typed msgpack, no pickle

To run it with the per-account detectors, wrap any ``Pipeline``::

    pipeline = LinkedPipeline(account_pipeline)    # is itself a Pipeline

``LinkedPipeline`` feeds each event to both, returns both alert streams, adds changed
clusters to ``BatchOutput.clusters`` and the risks of their members (raised to the
cluster's risk, with a ``cluster_membership`` reason and ``cluster_id``) to
``BatchOutput.risks``. ``build_pipeline`` selects it with
``detectors.pipeline: linked``. The account detectors may also call
``stage.observe_features(account_id, features, ts)`` with their per-account feature
dict; the stage works without it.

Modules: ``evidence`` (keys an event shows), ``graph`` (holders, rarity, link
weight), ``cohort`` (new accounts co-starting behind one multi-ASN pool),
``provenance`` (item keys robust to rewording; a group's item collisions against chance),
``clusters`` (stable-id union-find), ``scoring`` (cluster risk, evidence
for analysts), ``behaviour`` (feature-vector LSH), ``stage`` (the cadence),
``pipeline`` (composition), ``config`` (parameters: ``detectors.linkage`` in
settings). How it works and how it is tuned: ``docs/linkage.md``; how it scales out:
``docs/scale-out.md``.
"""

from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.linkage.pipeline import LinkedPipeline
from distillguard.detectors.linkage.stage import LinkageStage

__all__ = ["LinkageConfig", "LinkageStage", "LinkedPipeline"]
