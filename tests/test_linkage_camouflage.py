"""Camouflage by links: honest accounts tied to a hydra are not named by its alert.

An operator can make its accounts share evidence with honest customers -- pay with a
carded card whose owner also uses the API, exit through a proxy line whose subscriber
does (FRAUDAR, KDD 2016, turned around). The hydra's cluster then holds honest members;
its alert must name, and raise the risk of, only the members whose own behaviour looks
like extraction. ``configs/scenarios/camouflage_links.yaml`` measures it at scale.
"""

from __future__ import annotations

import msgspec

from distillguard.detectors.linkage import LinkageConfig, LinkageStage
from distillguard.events import RequestEvent
from tests.test_linkage_honest import QUESTIONS, _group, _stage_replay


def _cardholders(people: int) -> list[RequestEvent]:
    """People who pay with the card the hydra carded: their own address, ISP and
    browser, no template or system prompt."""
    out = []
    for e in _group(people, extracting=False):
        person = e.account_id.replace("acct", "person")
        n = int(e.event_id.split("-")[1])
        out.append(
            msgspec.structs.replace(
                e,
                event_id=f"{person}-{n}",
                account_id=person,
                ip=f"203.0.{113 + int(person[6:])}.9",
                asn=64_600 + int(person[6:]),
                user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
                system_prompt=None,
                prompt=QUESTIONS[(n * 5 + int(person[6:])) % len(QUESTIONS)],
            )
        )
    return out


def _hydra_on_own_cards(accounts: int) -> list[RequestEvent]:
    """The hydra of ``_group`` with a card per account (its NAT and template tie it)."""
    return [
        msgspec.structs.replace(e, payment_fingerprint=f"card-{e.account_id[4:]}")
        for e in _group(accounts, extracting=True)
    ]


def _borrowed(people: int) -> list[RequestEvent]:
    """Cardholders each of whose card one hydra account carded (``person{i}``, ``acct{i}``)."""
    return [
        msgspec.structs.replace(e, payment_fingerprint=f"card-{e.account_id[6:]}")
        for e in _cardholders(people)
    ]


def _extraction(account_id: str) -> float:
    return 2.0 if account_id.startswith("acct") else 0.0


def test_a_cardholder_one_borrowed_card_away_is_not_named_even_when_it_scores_high() -> None:
    # person0's own score crosses the member bar (a light customer's does, now and then);
    # one card links it to one hydra account: not enough to name it
    events = sorted(_hydra_on_own_cards(12) + _borrowed(2), key=lambda e: e.ts)
    stage = _stage_replay(events, lambda a: 2.0 if a != "person1" else 0.0)
    cid = stage.cluster_of("acct0")
    assert cid is not None and {"person0", "person1"} <= set(stage.members(cid))
    alerts = [a for a in stage.drain_alerts() if a.subject_id == cid]
    assert alerts and "acct11" in alerts[-1].members
    assert "person0" not in alerts[-1].members and "person1" not in alerts[-1].members
    assert stage.cluster_risk("person0") == 0.0 < stage.cluster_risk("acct0")


def test_cardholders_linked_to_a_hydra_are_in_its_cluster_but_not_named() -> None:
    events = sorted(_group(12, extracting=True) + _cardholders(3), key=lambda e: e.ts)
    stage = _stage_replay(events, _extraction)
    cid = stage.cluster_of("acct0")
    assert cid is not None
    assert {f"person{i}" for i in range(3)} <= set(stage.members(cid)), "the card links them"
    alerts = [a for a in stage.drain_alerts() if a.subject_id == cid]
    assert alerts, "12 of 15 members extract: the cluster is alerted"
    assert alerts[-1].members == sorted(f"acct{i}" for i in range(12))
    spared = next(r for r in alerts[-1].reasons if r.signal == "members_not_named")
    assert spared.value == 3 and "person0" in (spared.detail or "")
    assert stage.cluster_risk("acct3") >= LinkageConfig().alert_risk
    assert stage.cluster_risk("person1") == 0.0
    assert stage.cluster_reason("person1") is None


def test_a_cluster_convicted_by_its_content_sweep_still_names_every_member() -> None:
    events = sorted(_group(12, extracting=True) + _cardholders(3), key=lambda e: e.ts)
    stage = _stage_replay(events, _extraction)
    cid = stage.cluster_of("acct0")
    assert cid is not None
    st = stage._clusters[cid]
    st.provenance = stage.config.provenance_score_min  # as the sweep judge would set it
    assert stage._implicated(set(stage.members(cid)), st) == set(stage.members(cid))


def test_without_the_account_detectors_every_member_is_named() -> None:
    events = sorted(_group(12, extracting=True) + _cardholders(3), key=lambda e: e.ts)
    stage: LinkageStage = _stage_replay(events, None)
    cid = stage.cluster_of("acct0")
    assert cid is not None
    alerts = [a for a in stage.drain_alerts() if a.subject_id == cid]
    assert alerts and "person2" in alerts[-1].members


def test_a_card_carded_twice_is_two_links_through_one_value_and_names_no_one() -> None:
    hydra = [
        msgspec.structs.replace(e, payment_fingerprint="card-0") if e.account_id == "acct1" else e
        for e in _hydra_on_own_cards(12)
    ]
    events = sorted(hydra + _borrowed(1), key=lambda e: e.ts)
    stage = _stage_replay(events, lambda a: 2.0)  # person0's own score crosses the bar
    cid = stage.cluster_of("acct0")
    assert cid is not None and "person0" in stage.members(cid)
    links = [b for b in stage._strong.get("person0", {}) if b.startswith("acct")]
    assert sorted(links) == ["acct0", "acct1"], "the card links it to both accounts"
    alerts = [a for a in stage.drain_alerts() if a.subject_id == cid]
    assert alerts and "acct1" in alerts[-1].members
    assert "person0" not in alerts[-1].members
    assert stage.cluster_risk("person0") == 0.0
