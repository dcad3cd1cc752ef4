"""Learning from analysts, fast (issue 11, deliverable 5).

- The drill on a small adaptive scenario: a residential fleet the detectors miss is,
  after 5 confirmations, alerted within one simulated hour, with no benign account
  newly alerted (dismissals fed at the same time).
- Through the links (``detectors/linkage/labels.py``): two confirmed accounts alert
  their component of candidate links, one does not; a dismissed account cuts paths
  and is never in a case; verdicts are bounded and survive a checkpoint.
- A dismissal raises nobody, and takes the dismissed account out of its cluster's risk.
- Through the label-trained model: 5 confirmed accounts lift their look-alikes where
  the population is sparse, not where it is dense (a campaign that looks like
  hobbyists must not lift hobbyists), and hundreds of dismissals do not drown them.
"""

from __future__ import annotations

import random

import pytest

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.linkage.labels import AnalystLinks
from distillguard.detectors.linkage.pipeline import LinkedPipeline
from distillguard.detectors.pipeline import build_pipeline
from distillguard.detectors.scorers.feedback import LabelFeedback
from distillguard.evaluation.evaluate import Truth
from distillguard.evaluation.label_drill import DrillResult, label_drill
from distillguard.events import RequestEvent
from distillguard.records import Label
from distillguard.settings import LinkageLabels, get_settings
from distillguard.sim.engine import generate
from distillguard.sim.scenario import load_scenario

#: two days of ordinary and honest-group traffic and a residential fleet (an adaptive
#: variant: own card and sticky residential address per account, SDK agents, free
#: wording), small enough to simulate and replay in a few seconds
SCENARIO = """\
name: drill
seed: 11
start: "2026-11-16T00:00:00Z"
days: 2
models:
  - {name: atlas-2-pro, role: flagship}
  - {name: atlas-2-mini, role: mini}
benign:
  hobbyist: {accounts: 80}
  coding_assistant: {accounts: 15}
  campus_nat: {accounts: 20}
  company_card: {accounts: 15}
  university_course: {accounts: 30}
  hackathon: {accounts: 15}
  household: {accounts: 8}
campaigns:
  - {id: resi-fleet, archetype: residential_fleet, accounts: 30}
"""


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> DrillResult:
    path = tmp_path_factory.mktemp("drill") / "drill.yaml"
    path.write_text(SCENARIO)
    traffic = generate(load_scenario(str(path), corpus_split="tuning"))
    lines = [line for _, chunk in traffic.lines() for line in chunk]
    truth = {
        str(r["account_id"]): Truth(
            int(r["label"] == "distiller"),
            None if r["campaign"] is None else str(r["campaign"]),
            str(r["archetype"]),
        )
        for r in traffic.labels()
    }
    return label_drill(
        lines, truth, get_settings(), "residential_fleet", at_hours=30.0, dismiss=10, seed=0
    )


def test_five_confirmations_alert_the_rest_of_a_missed_campaign_within_an_hour(
    drill: DrillResult,
) -> None:
    assert len(drill.rest) >= 10, "the campaign must have accounts left to find"
    # missed before the labels: the drill is about a campaign the detectors did not see
    assert drill.rest_alerted_before <= 0.2 * len(drill.rest)
    assert drill.share_by(1.0) >= 0.9
    assert drill.benign_new == {}
    assert len(drill.dismissed) == 10


# -- through the links ----------------------------------------------------------------


def _links() -> AnalystLinks:
    return AnalystLinks(LinkageLabels(), "clu_", 60.0)


#: a chain a - b - c - d of candidate links (all below the cluster threshold of 1.0),
#: and e - f far away
CHAIN = {("a", "b"): 0.7, ("b", "c"): 0.65, ("c", "d"): 0.7, ("e", "f"): 0.9}


def test_two_confirmed_accounts_alert_their_component_one_does_not() -> None:
    links = _links()
    links.learn("a", True, now=0.0)
    assert links.evaluate(10.0, CHAIN) == ([], [])
    assert links.risk("b") is None
    links.learn("d", True, now=20.0)
    alerts, clusters = links.evaluate(30.0, CHAIN)
    assert [a.members for a in alerts] == [["a", "b", "c", "d"]]
    assert alerts[0].reasons[0].signal == "analyst_confirmed"
    assert alerts[0].evidence[0].accounts == ["a", "d"]
    assert [c.members for c in clusters] == [["a", "b", "c", "d"]]
    risk = links.risk("c")
    assert risk is not None and risk[0] == LinkageLabels().confirmed_risk
    assert links.risk("e") is None
    # nothing new: no second alert
    assert links.evaluate(100.0, CHAIN)[0] == []


def test_a_dismissed_account_cuts_the_path_and_is_never_in_a_case() -> None:
    links = _links()
    links.learn("a", True, now=0.0)
    links.learn("d", True, now=0.0)
    links.learn("b", False, now=0.0)
    alerts, _ = links.evaluate(10.0, CHAIN)
    assert alerts == []
    assert links.risk("b") is None and links.risk("c") is None
    # a later confirmation of the dismissed account replaces the dismissal
    links.learn("b", True, now=20.0)
    alerts, _ = links.evaluate(30.0, CHAIN)
    assert [a.members for a in alerts] == [["a", "b", "c", "d"]]


def test_a_boosted_link_touching_a_confirmed_account_counts() -> None:
    weak = {("a", "x"): 0.45, ("x", "y"): 0.45, ("a", "d"): 0.7}
    links = _links()  # link_min 0.6, boost 1.5: 0.45 counts only next to a confirmed one
    links.learn("a", True, now=0.0)
    links.learn("d", True, now=0.0)
    alerts, _ = links.evaluate(10.0, weak)
    assert [a.members for a in alerts] == [["a", "d", "x"]]


def test_verdicts_are_bounded_and_restore_to_the_same_cases() -> None:
    links = AnalystLinks(LinkageLabels(capacity=3), "clu_", 60.0)
    for i in range(5):
        links.learn(f"c{i}", True, now=float(i))
    assert list(links.confirmed) == ["c2", "c3", "c4"]
    links.evaluate(10.0, {("c3", "m"): 0.7, ("c4", "m"): 0.7})
    restored = AnalystLinks.from_state(links.to_state(), LinkageLabels(capacity=3), "clu_", 60.0)
    assert restored.risk("m") == links.risk("m") and restored.risk("m") is not None
    assert restored.to_state() == links.to_state()


# -- the linked pipeline --------------------------------------------------------------

T0 = 1_790_000_000.0


def _events() -> list[RequestEvent]:
    """A hydra of 12 (one card, one /24, templated prompts), a quiet account on its
    card and /24 that looks like a customer, and six unrelated users."""
    out = []
    for i in range(60):
        for k in range(12):
            out.append(
                RequestEvent(
                    event_id=f"h{k}-{i}",
                    ts=T0 + 120.0 * i + 7.0 * k,
                    account_id=f"hydra{k}",
                    model="m",
                    input_tokens=40,
                    output_tokens=1500,
                    status=200,
                    max_tokens=8192,
                    temperature=0.0,
                    user_agent="python-requests/2.31",
                    payment_fingerprint="card-9",
                    ip=f"198.51.100.{k + 1}",
                    prompt=f"Task {i}-{k}: write a python function for case {i * 7 + k}. "
                    "Think step by step.",
                )
            )
        if i % 3 == 0:
            out.append(
                RequestEvent(
                    event_id=f"q-{i}",
                    ts=T0 + 120.0 * i + 90.0,
                    account_id="quiet",
                    model="m",
                    input_tokens=20,
                    output_tokens=200,
                    status=200,
                    payment_fingerprint="card-9",
                    ip="198.51.100.77",
                    user_agent="openai-python/1.54.3",
                    prompt=f"what is a good name for a cat number {i}?",
                )
            )
        for k in range(6):
            out.append(
                RequestEvent(
                    event_id=f"u{k}-{i}",
                    ts=T0 + 120.0 * i + 50.0 + k,
                    account_id=f"user{k}",
                    model="m",
                    input_tokens=20,
                    output_tokens=200,
                    status=200,
                    ip=f"192.0.{k}.5",
                    user_agent="openai-python/1.54.3",
                    prompt=f"how do I cook dish number {i} for {k} people?",
                )
            )
    return sorted(out, key=lambda e: e.ts)


def _linked() -> LinkedPipeline:
    pipe = build_pipeline(get_settings())
    assert isinstance(pipe, LinkedPipeline)
    return pipe


def test_a_dismissal_raises_nobody_and_unhooks_the_account_from_its_cluster() -> None:
    events = _events()
    taught, control = _linked(), _linked()
    for e in events[:600]:
        taught.process(e)
        control.process(e)
    assert control.risk("quiet").reasons[0].signal == "cluster_membership"
    taught.learn_label(Label(account_id="quiet", label="benign"))
    for e in events[600:900]:
        taught.process(e)
        control.process(e)
    taught.drain()
    control.drain()
    for account in control.accounts():
        assert taught.risk(account).risk <= control.risk(account).risk + 1e-9, account
    quiet = taught.risk("quiet")
    assert quiet.risk == taught.account.risk("quiet").risk < 0.4
    assert all(r.signal != "cluster_membership" for r in quiet.reasons)


def test_confirmations_and_the_sweep_survive_a_restart() -> None:
    events = _events()
    first = _linked()
    for e in events[:500]:
        first.process(e)
    first.drain()
    for account in ("user1", "user2"):
        first.learn_label(Label(account_id=account, label="distiller"))
    # mid-sweep and before the links acted: both must be in the checkpoint
    assert isinstance(first.account, AccountPipeline) and first.account._sweep
    second = _linked()
    second.restore(first.snapshot_shared())
    second.restore_accounts(first.snapshot_accounts(first.accounts()))
    outputs = []
    for pipe in (first, second):
        alerts = []
        for e in events[500:700]:
            if pipe.process(e):
                alerts += [(a.alert_id, tuple(a.members)) for a in pipe.drain().alerts]
        alerts += [(a.alert_id, tuple(a.members)) for a in pipe.drain().alerts]
        risks = {a: (pipe.risk(a).risk, pipe.risk(a).cluster_id) for a in pipe.accounts()}
        outputs.append((alerts, risks))
    assert outputs[0] == outputs[1]
    alerts, risks = outputs[0]
    # the users keep one schedule (candidate links): the two confirmed alert their case
    cases = [members for alert_id, members in alerts if "lbl-" in alert_id]
    assert cases and {"user1", "user2"} <= set(cases[0])
    assert risks["user3"][0] >= LinkageLabels().confirmed_risk


# -- through the label-trained model --------------------------------------------------


def _hobbyist(rng: random.Random) -> dict[str, float]:
    return {
        "requests_per_hour": rng.uniform(0.5, 2.0),
        "duty_cycle": rng.uniform(0.05, 0.15),
        "topic_breadth": rng.uniform(0.6, 0.9),
        "cot_elicitation_rate": rng.uniform(0.0, 0.1),
    }


def _campaign(rng: random.Random) -> dict[str, float]:
    return {
        "requests_per_hour": rng.uniform(0.8, 1.2),
        "duty_cycle": rng.uniform(0.3, 0.35),
        "topic_breadth": rng.uniform(0.2, 0.25),
        "cot_elicitation_rate": rng.uniform(0.45, 0.55),
        "capability_share": rng.uniform(0.8, 0.9),
    }


def _observed(rng: random.Random) -> LabelFeedback:
    fb = LabelFeedback(min_per_class=5)
    for i in range(400):  # the population: hobbyists, and the campaign's 2%
        fb.observe_one(_campaign(rng) if i % 50 == 0 else _hobbyist(rng))
    return fb


def test_confirmed_labels_lift_look_alikes_only_where_the_population_is_sparse() -> None:
    rng = random.Random(5)
    fb = _observed(rng)
    for _ in range(5):
        fb.learn_one(_campaign(rng), True)
    assert min(fb.score_one(_campaign(rng)) for _ in range(20)) > 3.0
    assert max(fb.score_one(_hobbyist(rng)) for _ in range(200)) < 0.5
    # a campaign that looks like hobbyists: its confirmations must not lift hobbyists
    fb = _observed(rng)
    for _ in range(5):
        fb.learn_one(_hobbyist(rng), True)
    assert max(fb.score_one(_hobbyist(rng)) for _ in range(200)) < 0.5


def test_many_dismissals_do_not_drown_five_confirmations() -> None:
    rng = random.Random(6)
    fb = _observed(rng)
    for _ in range(300):
        fb.learn_one(_hobbyist(rng), False)
    for _ in range(5):
        fb.learn_one(_campaign(rng), True)
    # the logistic regression is trusted now (5 per class): balanced, it does not pull
    # the campaign down for being the rare class
    assert min(fb.score_one(_campaign(rng)) for _ in range(20)) > 2.0
    assert max(fb.score_one(_hobbyist(rng)) for _ in range(200)) < 0.0


def test_the_density_ring_survives_a_checkpoint() -> None:
    rng = random.Random(7)
    fb = _observed(rng)
    for _ in range(5):
        fb.learn_one(_campaign(rng), True)
    restored = LabelFeedback.from_state(fb.to_state())
    for x in (_campaign(rng), _hobbyist(rng)):
        assert restored.score_one(x) == fb.score_one(x)
        assert restored.confirmed_share(x) == fb.confirmed_share(x)
    # the ring is what keeps hobbyists unlifted: without it the labels are all there is
    bare = LabelFeedback.from_state(fb.to_state(), population_capacity=0)
    h = {**_campaign(rng), "duty_cycle": 0.2}
    assert bare.confirmed_share(h) >= fb.confirmed_share(h)
