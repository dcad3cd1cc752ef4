"""Coordinated is not extracting: honest groups are clustered, reported, never alerted.

DESIGN.md, "Honest groups act together too": a company's accounts on one card, an
org's members behind one NAT with one template are linked like a hydra. A cluster
alert (and its members inheriting the cluster's risk) needs members whose own
behaviour looks like extraction; an org's members are not tied by what an org shares.
"""

from __future__ import annotations

from collections.abc import Callable

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.linkage import LinkageConfig, LinkageStage, LinkedPipeline
from distillguard.detectors.pipeline import BatchOutput
from distillguard.events import RequestEvent
from distillguard.settings import get_settings

T0 = 1_790_000_000.0
#: the company's helpdesk template: its head and tail are what the linkage stage sees
TEMPLATE = (
    "ACME helpdesk assistant, please answer the following staff question: {q} (ticket {n}). "
    "Keep the answer short and friendly, and say so when unsure, thank you kindly."
)
QUESTIONS = [
    "what is the capital of australia",
    "how do I sort a dict by value in python",
    "suggest a name for a cat",
    "when did the berlin wall fall",
    "summarise the plot of hamlet in one line",
    "is it going to rain in lisbon in march",
    "translate good morning into german",
    "how many grams in a pound",
    "best way to boil an egg",
    "who wrote the brothers karamazov",
    "explain what a mortgage is",
    "recommend a book about birds",
]


def _group(
    accounts: int, *, extracting: bool, org: str | None = None, card: str | None = "card-corp"
) -> list[RequestEvent]:
    """``accounts`` accounts on one card and one office NAT (two /24s), one template and
    system prompt; people's questions with short answers, or harvesting (long answers,
    large max_tokens, logprobs with many alternatives)."""
    out = []
    for a in range(accounts):
        for j in range(12):
            out.append(
                RequestEvent(
                    event_id=f"{a}-{j}",
                    ts=T0 + 60.0 * a + 900.0 * j + 7.0 * (j * j % 5),
                    account_id=f"acct{a}",
                    model="m",
                    input_tokens=40 if extracting else 300,
                    output_tokens=3000 if extracting else 60,
                    status=200,
                    org_id=org,
                    payment_fingerprint=card,
                    ip=f"198.51.{100 + j % 2}.{1 + a % 3}",
                    asn=64500,
                    user_agent="openai-python/1.54.3",
                    system_prompt="You are the ACME internal helper.",
                    prompt=TEMPLATE.format(q=QUESTIONS[(a + j) % len(QUESTIONS)], n=f"{a}/{j}"),
                    max_tokens=16_000 if extracting else 1024,
                    logprobs=True if extracting else None,
                    top_logprobs=20 if extracting else None,
                    temperature=0.7,
                )
            )
    out.sort(key=lambda e: e.ts)
    return out


def _replay(events: list[RequestEvent]) -> tuple[LinkedPipeline, BatchOutput]:
    account = AccountPipeline(get_settings().detectors)
    pipe = LinkedPipeline(
        account, LinkageStage(get_settings().detectors.linkage, clock=account.clock)
    )
    out = BatchOutput()
    for e in events:
        pipe.process(e)
        batch = pipe.drain()
        out.alerts.extend(batch.alerts)
        out.clusters.extend(batch.clusters)
        out.risks.extend(batch.risks)
    return pipe, out


def test_honest_group_on_one_card_is_reported_not_alerted_and_risk_not_raised() -> None:
    pipe, out = _replay(_group(12, extracting=False))
    cid = pipe.linkage.cluster_of("acct0")
    assert cid is not None, "the card ties them: a cluster in the clusters view"
    reported = [c for c in out.clusters if c.cluster_id == cid and c.members]
    assert reported and len(reported[-1].members) == 12
    assert reported[-1].risk < get_settings().detectors.linkage.alert_risk
    assert any(e.kind == "payment" for e in reported[-1].evidence)
    assert [a for a in out.alerts if a.subject_type == "cluster"] == []
    for i in range(12):
        r = pipe.risk(f"acct{i}")
        assert r.risk == pipe.account.risk(f"acct{i}").risk  # not raised to the cluster's
        assert r.cluster_id is None
        assert all(x.signal != "cluster_membership" for x in r.reasons)


def test_same_structure_extracting_is_alerted_and_members_inherit() -> None:
    pipe, out = _replay(_group(12, extracting=True))
    alerts = [a for a in out.alerts if a.subject_type == "cluster"]
    assert alerts, "coordinated and extracting: a hydra"
    assert len(alerts[-1].members) == 12
    share = next(r.value for r in alerts[-1].reasons if r.signal == "members_extracting")
    assert share >= get_settings().detectors.linkage.extraction_share_min
    r = pipe.risk("acct5")
    assert r.cluster_id == alerts[-1].cluster_id
    assert r.reasons[0].signal == "cluster_membership" or r.risk >= pipe.linkage.cluster_risk(
        "acct5"
    )


def _stage_replay(
    events: list[RequestEvent], extraction: Callable[[str], float] | None
) -> LinkageStage:
    stage = LinkageStage(LinkageConfig(), member_extraction=extraction)
    for e in events:
        stage.process(e)
    for k in range(3):  # event time moves past the cadence
        stage.process(
            RequestEvent(
                event_id=f"tick{k}",
                ts=events[-1].ts + 120.0 * (k + 1),
                account_id="tick",
                model="m",
                input_tokens=1,
                output_tokens=1,
                status=200,
            )
        )
    return stage


def test_org_members_sharing_card_nat_and_template_are_not_a_hydra() -> None:
    events = _group(12, extracting=False, org="org_acme")
    # the stage alone (no behaviour to judge): an org's shared infrastructure ties nothing
    stage = _stage_replay(events, None)
    assert stage.cluster_of("acct0") is None
    assert stage.drain_alerts() == []
    # the same accounts without the org (card only removed too): they would be a cluster
    orgless = _stage_replay(_group(12, extracting=False, org=None, card=None), None)
    assert orgless.cluster_of("acct0") is not None


def test_org_whose_members_extract_is_still_judged_by_behaviour() -> None:
    events = _group(12, extracting=True, org="org_acme", card=None)
    stage = _stage_replay(events, lambda account_id: 2.0)
    cid = stage.cluster_of("acct0")
    assert cid is not None and len(stage.members(cid)) == 12
    assert any(a.subject_id == cid for a in stage.drain_alerts())
    # and through the account detectors: members that harvest are linked and alerted
    _, out = _replay(events)
    assert any(a.subject_type == "cluster" for a in out.alerts)


#: a course's assignment template around a maths or programming problem
ASSIGNMENT = "CS 101 homework 2. {q} (problem {n})\nPlease help me understand the approach."
PROBLEMS = [
    "a train leaves at 3 pm going 60 km per hour, when does it reach a town 150 km away",
    "write a python function that returns the 10th fibonacci number",
    "she buys 12 apples at 3 dollars each and pays with 50, how much change",
    "sort a list of 8 integers in python without using sorted",
    "how many minutes are there in 7 days",
    "write a loop in python that prints the even numbers below 20",
]


def _class(accounts: int, *, output_tokens: int) -> list[RequestEvent]:
    """``accounts`` students behind the campus NAT (two /24s) on one assignment
    template, maths and programming problems, a few requests each in one lecture; each
    on their own chat app, two in three of which ask for 4,096 tokens (enough, with the
    capability content, to put most members over ``member_extraction_min`` if a large
    max_tokens counted). ``output_tokens`` is
    what they get back: a student's explanation (modest) or a harvest (long)."""
    out = []
    for a in range(accounts):
        for j in range(6):
            out.append(
                RequestEvent(
                    event_id=f"{a}-{j}",
                    ts=T0 + 30.0 * a + 600.0 * j + 11.0 * (j * j % 5),
                    account_id=f"acct{a}",
                    model="m",
                    input_tokens=60,
                    output_tokens=output_tokens,
                    status=200,
                    ip=f"203.0.{113 + j % 2}.{1 + a % 3}",
                    asn=64501,
                    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Firefox/132.0",
                    prompt=ASSIGNMENT.format(q=PROBLEMS[(a + j) % len(PROBLEMS)], n=j + 1),
                    max_tokens=(2048, 4096, 4096)[a % 3],
                    temperature=0.7,
                )
            )
    out.sort(key=lambda e: e.ts)
    return out


def test_course_on_one_template_asking_for_long_answers_is_not_extracting() -> None:
    # a generous max_tokens on some students' apps is their client's setting, not what
    # was taken: the course is coordinated (clustered), its modest answers do not convict
    pipe, out = _replay(_class(12, output_tokens=150))
    assert pipe.linkage.cluster_of("acct0") is not None
    assert [a for a in out.alerts if a.subject_type == "cluster"] == []
    # the same class taking long answers is a campaign, and is still alerted
    pipe, out = _replay(_class(12, output_tokens=3000))
    alerts = [a for a in out.alerts if a.subject_type == "cluster"]
    assert alerts and len(alerts[-1].members) == 12


def test_a_client_setting_counts_only_when_the_whole_cluster_shares_it() -> None:
    # members at 0.2 on their own behaviour, +0.3 for a large max_tokens: extracting only
    # when (nearly) every member asks for it, i.e. one operator's configuration
    sample = [f"m{i}" for i in range(12)]
    every = LinkageStage(
        LinkageConfig(), member_extraction=lambda a: 0.2, member_setting=lambda a: 0.3
    )
    assert every._extracting_share(sample) == (1.0, True)
    third = LinkageStage(
        LinkageConfig(),
        member_extraction=lambda a: 0.2,
        member_setting=lambda a: 0.3 if int(a[1:]) % 3 == 0 else 0.0,
    )
    assert third._extracting_share(sample) == (0.0, False)
