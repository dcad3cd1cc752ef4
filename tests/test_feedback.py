"""Analyst feedback: dismissing 20 false alerts of one archetype quiets that archetype.

Runs the simulator's research groups (chain-of-thought prompts at modest volume, a
hard negative) with a deliberately trigger-happy alert threshold, so they raise
false alerts; an analyst dismisses 20 of them; then *new* traffic (another seed) is
replayed by a pipeline that has learnt those labels. Research-group false alerts
must drop, and the distillers must still be caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.events import EventDecoder, RequestEvent
from distillguard.records import Alert, Label
from distillguard.settings import Detectors, get_settings
from distillguard.sim.engine import generate
from distillguard.sim.scenario import load_scenario
from tests.pipelines import alerts_as_raised

SCENARIO = """name: feedback
seed: {seed}
start: "2026-11-16T00:00:00Z"
days: 1.5
models:
  - {{name: atlas-2-pro, role: flagship}}
  - {{name: atlas-2-mini, role: mini}}
benign:
  research_group: {{accounts: 60}}
  hobbyist: {{accounts: 40}}
campaigns:
  - {{id: bulk-1, archetype: bulk_distiller, accounts: 1, daily_requests: 3000}}
  - {{id: logprob-1, archetype: logprob_harvester, accounts: 1, daily_requests: 2000}}
"""
#: Far below the shipped 0.7: makes research groups raise false alerts to dismiss.
TRIGGER_HAPPY = 0.05


def traffic(tmp: Path, seed: int) -> tuple[list[RequestEvent], dict[str, str]]:
    path = tmp / f"feedback-{seed}.yaml"
    path.write_text(SCENARIO.format(seed=seed), encoding="utf-8")
    generated = generate(load_scenario(str(path)))
    decoder = EventDecoder(now=lambda: 1_900_000_000.0)  # after any scenario
    events = [decoder.decode(line) for _, lines in generated.lines() for line in lines]
    return events, {a.account_id: a.archetype for a in generated.accounts}


def first_alerts(pipe: AccountPipeline, events: list[RequestEvent]) -> dict[str, Alert]:
    first: dict[str, Alert] = {}
    for alert in alerts_as_raised(pipe, events):
        first.setdefault(alert.subject_id, alert)
    return first


def by_archetype(alerts: dict[str, Alert], archetypes: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for account in alerts:
        out[archetypes[account]] = out.get(archetypes[account], 0) + 1
    return out


@pytest.fixture(scope="module")
def config() -> Detectors:
    return get_settings().detectors.model_copy(update={"alert_threshold": TRIGGER_HAPPY})


@pytest.fixture(scope="module")
def dismissals(tmp_path_factory: pytest.TempPathFactory, config: Detectors) -> list[Label]:
    events, archetypes = traffic(tmp_path_factory.mktemp("week1"), seed=11)
    alerts = first_alerts(AccountPipeline(config), events)
    research = [a for acct, a in alerts.items() if archetypes[acct] == "research_group"]
    assert len(research) >= 20, "the setup must produce at least 20 false alerts to dismiss"
    return [
        Label(
            account_id=a.subject_id,
            label="benign",
            alert_id=a.alert_id,
            features=a.features,
            analyst="t&s",
            note="academic CoT study",
        )
        for a in research[:20]
    ]


@pytest.fixture(scope="module")
def week2(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RequestEvent], dict[str, str]]:
    return traffic(tmp_path_factory.mktemp("week2"), seed=12)


def test_dismissed_archetype_raises_fewer_false_alerts(
    config: Detectors, dismissals: list[Label], week2: tuple[list[RequestEvent], dict[str, str]]
) -> None:
    events, archetypes = week2
    before = by_archetype(first_alerts(AccountPipeline(config), events), archetypes)
    taught = AccountPipeline(config)
    for label in dismissals:
        taught.learn_label(label)
    after = by_archetype(first_alerts(taught, events), archetypes)
    assert before.get("research_group", 0) >= 10
    assert after.get("research_group", 0) <= before["research_group"] // 2
    # the distillers are nothing like the dismissed accounts: still caught
    assert after.get("bulk_distiller") == 1
    assert after.get("logprob_harvester") == 1


def test_learnt_labels_survive_a_restart(
    config: Detectors, dismissals: list[Label], week2: tuple[list[RequestEvent], dict[str, str]]
) -> None:
    events, _ = week2
    taught = AccountPipeline(config)
    for label in dismissals:
        taught.learn_label(label)
    restarted = AccountPipeline(config)
    restarted.restore(taught.snapshot())
    assert restarted.feedback.labels_seen() == (20, 0)
    assert first_alerts(restarted, events).keys() == first_alerts(taught, events).keys()
