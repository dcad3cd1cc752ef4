"""End to end on the `small` scenario: the composed pipeline finds the hydras, not the NATs.

Simulates `small` (two hydra campaigns among every benign archetype, NATs included),
replays it through ``LinkedPipeline(AccountPipeline)`` exactly as ``replay`` does, and
checks the report: hydra accounts covered by alerted clusters, member precision, no
benign account in any alerted cluster, and each member's risk carrying its cluster.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.linkage import LinkageConfig, LinkageStage, LinkedPipeline
from distillguard.evaluation.replay import replay_file
from distillguard.events import EventDecoder
from distillguard.settings import get_settings
from distillguard.sim.engine import generate, write_files
from distillguard.sim.scenario import load_scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("small")
    events, labels = out / "events.jsonl", out / "labels.jsonl"
    write_files(generate(load_scenario("small")), events, labels)
    truth = {}
    for line in labels.read_bytes().splitlines():
        lab = orjson.loads(line)
        truth[lab["account_id"]] = lab
    return events, truth


def test_small_hydras_clustered_and_no_benign_cluster_alert(small):
    events, truth = small
    account = AccountPipeline(get_settings().detectors)
    pipeline = LinkedPipeline(account, LinkageStage(LinkageConfig(), clock=account.clock))
    report = replay_file(events, pipeline, EventDecoder(now=lambda: 1_900_000_000.0))

    alerted = [c for c in report.clusters.values() if c.members and c.first_alert_ts]
    assert alerted, "no cluster alert at all"
    covered = {m for c in alerted for m in c.members}
    campaigns: dict[str, set[str]] = defaultdict(set)
    for acct, lab in truth.items():
        if lab["archetype"] == "hydra":
            campaigns[lab["campaign"]].add(acct)
    assert len(campaigns) >= 2
    for camp, accts in campaigns.items():
        assert len(accts & covered) >= 0.9 * len(accts), camp

    members = [m for c in alerted for m in c.members]
    benign = [m for m in members if truth[m]["label"] == "benign"]
    assert benign == [], f"benign accounts in alerted clusters: {benign}"
    archetypes = {truth[m]["archetype"] for m in members}
    assert not archetypes & {"campus_nat", "corporate_nat"}

    # every covered hydra member reports its cluster and a high risk
    for acct in sorted(covered)[:20]:
        out = report.accounts[acct]
        assert out.cluster_id is not None and out.risk >= 0.7
        assert out.first_alert_ts is not None
        reasons = [r.signal for r in pipeline.risk(acct).reasons]
        assert "cluster_membership" in reasons
