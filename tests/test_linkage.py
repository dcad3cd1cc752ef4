"""The linkage stage on crafted event sequences: what it must cluster and what it must not."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from distillguard.detectors.linkage import LinkageConfig, LinkageStage, LinkedPipeline
from distillguard.detectors.linkage.clusters import ClusterBook
from distillguard.detectors.linkage.evidence import fingerprint_keys, net_key, template_keys
from distillguard.detectors.linkage.graph import EvidenceGraph
from distillguard.detectors.pipeline import CountingPipeline
from distillguard.events import RequestEvent
from distillguard.records import Alert

T0 = 1_790_000_000.0
_ids = itertools.count()

HUMAN_PROMPTS = [
    "When did the eagles win their last super bowl?",
    "Who wrote the novel the name of the rose?",
    "what is the capital city of australia",
    "Can you suggest a birthday present for my sister who likes hiking?",
    "How do I fix a leaking kitchen tap",
    "Translate 'good morning' into Italian please",
    "why is the sky blue",
    "Give me a recipe for banana bread without eggs.",
    "Explain the offside rule in football",
    "Who played the lead in the film Amelie?",
]


def ev(acct: str, ts: float, **kw: Any) -> RequestEvent:
    """An event of ``acct`` at ``ts``; ``kw`` sets RequestEvent's optional fields."""
    return RequestEvent(
        event_id=f"e{next(_ids)}",
        ts=ts,
        account_id=acct,
        model="m",
        input_tokens=20,
        output_tokens=200,
        status=200,
        **kw,
    )


def run(stage: LinkageStage, events: list[RequestEvent]) -> list[Alert]:
    alerts: list[Alert] = []
    for e in sorted(events, key=lambda e: e.ts):
        alerts.extend(stage.process(e))
    return alerts


def nat_population(n: int = 300, hours: float = 6.0, seed: int = 1) -> list[RequestEvent]:
    """Honest users behind one university NAT address with the popular SDK agent."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        start = T0 + rng.uniform(0, hours * 3600)
        for j in range(rng.randint(2, 6)):
            events.append(
                ev(
                    f"student{i}",
                    start + j * rng.uniform(30, 400),
                    ip="141.20.5.9",
                    asn=680,
                    user_agent="openai-python/1.54.3",
                    payment_fingerprint=f"card-s{i}",
                    system_prompt="You are a helpful assistant.",
                    prompt=rng.choice(HUMAN_PROMPTS),
                )
            )
    return events


def hydra(
    n: int = 12, hours: float = 6.0, seed: int = 2, card: str = "card-h"
) -> list[RequestEvent]:
    """Low-volume accounts sharing one card and a proxy /24, each below any rate limit."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        for _ in range(rng.randint(3, 8)):
            events.append(
                ev(
                    f"hydra{i}",
                    T0 + rng.uniform(0, hours * 3600),
                    payment_fingerprint=card,
                    ip=f"45.77.12.{rng.randint(1, 254)}",
                    asn=20473,
                    user_agent="python-requests/2.31.0",
                    prompt=rng.choice(HUMAN_PROMPTS),
                )
            )
    return events


def test_hydra_clustered_and_nat_not():
    stage = LinkageStage(LinkageConfig())
    alerts = run(stage, hydra() + nat_population())
    hydra_ids = {f"hydra{i}" for i in range(12)}
    cluster_alerts = [a for a in alerts if a.subject_type == "cluster"]
    assert cluster_alerts, "the hydra raised no cluster alert"
    final = cluster_alerts[-1]
    assert set(final.members) == hydra_ids
    assert final.cluster_id == final.subject_id == stage.cluster_of("hydra0")
    assert {e.kind for e in final.evidence} >= {"payment", "net"}
    payment = next(e for e in final.evidence if e.kind == "payment")
    assert payment.value == "card-h" and set(payment.accounts) == hydra_ids
    assert all(stage.cluster_of(f"student{i}") is None for i in range(300))
    assert all(stage.cluster_risk(a) >= 0.7 for a in hydra_ids)
    assert stage.cluster_risk("student0") == 0.0


def test_nat_alone_forms_no_cluster():
    stage = LinkageStage(LinkageConfig())
    alerts = run(stage, nat_population(seed=7))
    assert alerts == []
    assert stage.stats()["clusters"] == 0
    assert stage.drain_clusters() == []


def test_links_decay_and_cluster_dissolves():
    cfg = LinkageConfig()
    stage = LinkageStage(cfg)
    run(stage, hydra(hours=1.0))
    assert stage.cluster_of("hydra0") is not None
    cid = stage.cluster_of("hydra0")
    stage.drain_clusters()
    # Days later only unrelated traffic arrives: the hydra's shared evidence decays away.
    later = T0 + 5 * 86_400
    run(stage, [ev(f"other{i}", later + i * 120.0) for i in range(60)])
    assert stage.cluster_of("hydra0") is None
    assert stage.cluster_risk("hydra0") == 0.0
    dissolved = [c for c in stage.drain_clusters() if c.cluster_id == cid]
    assert dissolved and dissolved[0].members == []


def test_decay_weakens_a_link_before_it_expires():
    g = EvidenceGraph(LinkageConfig())
    a, b = g.holder("a", T0), g.holder("b", T0)
    for h in (a, b):
        g.observe(h, "p:card", T0)
        g.observe(h, "n:10.1.2", T0)
    fresh = g.link_weight(a, b, T0)
    assert g.link_weight(a, b, T0 + 3600) < fresh
    assert g.link_weight(a, b, T0 + 86_400) < g.link_weight(a, b, T0 + 3600)


def test_rarity_weights_rare_evidence_above_common():
    cfg = LinkageConfig()
    g = EvidenceGraph(cfg)
    g.set_population(3_000)
    assert g.rarity(2) == 1.0
    assert 1.0 > g.rarity(10) > g.rarity(100) > g.rarity(1_000) > 0.0
    # A card shared by two accounts versus one shared by 120 of them.
    for i in range(120):
        g.observe(g.holder(f"c{i}", T0), "p:card-crowd", T0)
    x, y = g.holder("x", T0), g.holder("y", T0)
    for h in (x, y):
        g.observe(h, "p:card-pair", T0)
    crowd = g.link_weight(g.holders["c0"], g.holders["c1"], T0)
    assert g.link_weight(x, y, T0) > 1.5 * crowd > 0


def test_one_shared_network_is_not_evidence():
    g = EvidenceGraph(LinkageConfig())
    a, b = g.holder("a", T0), g.holder("b", T0)
    for h in (a, b):
        g.observe(h, "n:10.1.2", T0)
    assert g.link_weight(a, b, T0) == 0.0
    for h in (a, b):
        g.observe(h, "n:10.1.3", T0)
    assert g.link_weight(a, b, T0) > 0.5


def test_values_above_population_share_are_dropped():
    cfg = LinkageConfig()
    g = EvidenceGraph(cfg)
    limit = g.drop_at["u"]
    for i in range(limit + 1):
        g.observe(g.holder(f"a{i}", T0), "u:openai-python/1.54.3", T0)
    assert g.values["u:openai-python/1.54.3"].common
    assert all("u:openai-python/1.54.3" not in h.keys for h in g.holders.values())
    assert g.link_weight(g.holders["a0"], g.holders["a1"], T0) == 0.0


def test_template_lsh_matches_slot_filled_variants_only():
    template = (
        "You are a meticulous tutor. Think step by step about the task below. Task: {} "
        "Finish with a line 'Final answer:' and explain each step."
    )
    contents = [
        "Sum the numbers 17 and 25.",
        "Write a haiku about the sea in autumn light",
        "Sort the list [3, 1, 2] in Python",
        "Who discovered penicillin and when?",
    ]
    keys = [set(template_keys(template.format(c))) for c in contents]
    for a, b in itertools.combinations(keys, 2):
        assert len(a & b) >= 4  # the whole head or tail skeleton
    other = set(template_keys("Please summarise this article for me: " + contents[0]))
    human = set(template_keys(HUMAN_PROMPTS[0]))
    assert not (keys[0] & human)
    assert len(keys[0] & other) < 4
    near = set(template_keys(template.replace("meticulous", "careful").format(contents[1])))
    assert len(near & keys[1]) >= 2  # a word changed: still meets on some bands


def test_fingerprint_keys_meet_within_a_few_bits():
    a = fingerprint_keys("0123456789abcdef")
    b = fingerprint_keys("0123456789abcdee")
    c = fingerprint_keys("fedcba9876543210")
    assert len(set(a) & set(b)) == 3 and not set(a) & set(c)


TEMPLATE = (
    "Act as an expert. Reason step by step, showing all work. Problem: {}. "
    "Then restate the answer with a justification."
)


def test_template_and_schedule_link_accounts_without_shared_infra():
    """Different cards and networks, tied by one template *and* synchronised bursts."""
    rng = random.Random(4)
    events = []
    for day in range(3):
        for start_h in (2, 9, 17):
            onset = T0 + day * 86_400 + start_h * 3600
            for i in range(8):
                for j in range(3):
                    events.append(
                        ev(
                            f"sync{i}",
                            onset + rng.uniform(0, 60) + j * 30,
                            ip=f"{30 + i}.1.{day}.9",
                            payment_fingerprint=f"card-y{i}",
                            prompt=TEMPLATE.format(rng.choice(HUMAN_PROMPTS)),
                        )
                    )
    # Honest users of the same template (a popular tool) at random times.
    for i in range(6):
        for _ in range(12):
            events.append(
                ev(
                    f"tool{i}",
                    T0 + rng.uniform(0, 3 * 86_400),
                    ip=f"{60 + i}.1.1.9",
                    prompt=TEMPLATE.format(rng.choice(HUMAN_PROMPTS)),
                )
            )
    stage = LinkageStage(LinkageConfig())
    alerts = run(stage, events)
    cid = stage.cluster_of("sync0")
    assert cid is not None
    assert set(stage.members(cid)) == {f"sync{i}" for i in range(8)}
    assert {e.kind for e in alerts[-1].evidence} >= {"template", "sync"}
    assert all(stage.cluster_of(f"tool{i}") is None for i in range(6))


def test_one_product_alone_does_not_link():
    """Users of one product share its template, system prompt and agent: not a hydra."""
    rng = random.Random(5)
    events = [
        ev(
            f"ide{i}",
            T0 + rng.uniform(0, 2 * 86_400),
            ip=f"{70 + i}.2.3.4",
            user_agent="cursor-agent/0.42.3",
            system_prompt="You are a coding assistant.",
            prompt=TEMPLATE.format(rng.choice(HUMAN_PROMPTS)),
        )
        for i in range(25)
        for _ in range(15)
    ]
    stage = LinkageStage(LinkageConfig())
    assert run(stage, events) == []
    assert stage.stats()["clusters"] == 0


def test_snapshot_round_trip_continues_identically():
    rng = random.Random(8)
    redacted = [
        ev(
            f"red{i}",
            T0 + rng.uniform(0, 6 * 3600),
            ip=f"51.15.{rng.randint(1, 3)}.{i}",
            prompt_fingerprint=f"{rng.getrandbits(64) & 0xFFFF00000000FFFF:016x}",
        )
        for i in range(6)
        for _ in range(10)
    ]
    events = sorted(hydra(seed=5) + nat_population(80, seed=6) + redacted, key=lambda e: e.ts)
    half = len(events) // 4
    a = LinkageStage(LinkageConfig())
    run(a, events[:half])
    assert a.stats()["links"] > 0
    blob = a.snapshot()
    b = LinkageStage(LinkageConfig())
    b.restore(blob)
    assert b.snapshot() == blob
    out_a = run(a, events[half:])
    out_b = run(b, events[half:])
    assert out_a == out_b and out_a
    assert a.drain_clusters() == b.drain_clusters()
    assert a.snapshot() == b.snapshot()


def test_restore_rejects_garbage():
    stage = LinkageStage(LinkageConfig())
    run(stage, hydra(n=6, hours=1.0))
    before = stage.snapshot()
    with pytest.raises(ValueError):
        stage.restore(b"not json")
    with pytest.raises(ValueError):
        stage.restore(b'{"version": 99}')
    with pytest.raises(ValueError):
        stage.restore(b'{"version": 1, "holders": [[1]]}')
    broken = before[: len(before) // 2]  # truncated: the typed decoder stops it
    with pytest.raises(ValueError):
        stage.restore(broken)
    assert stage.snapshot() == before


def test_cluster_ids_survive_merge_and_split():
    book = ClusterBook()
    book.union("a", "b")
    book.union("c", "d")
    book.union("d", "e")
    assert book.union("b", "c") == "clu_1"
    changed, dissolved = book.rebuild([("a", "b"), ("c", "d"), ("d", "e")])
    # The larger part keeps the id, the smaller part gets a new one.
    assert book.cluster_of["c"] == "clu_1" and book.cluster_of["a"] == "clu_3"
    assert changed == {"clu_1", "clu_3"} and dissolved == []
    changed, dissolved = book.rebuild([("c", "d")])
    assert book.cluster_of["c"] == "clu_1" and dissolved == ["clu_3"] and "e" not in book.cluster_of


def test_linked_pipeline_raises_member_risk_with_reason():
    pipe = LinkedPipeline(CountingPipeline())
    for e in sorted(hydra(), key=lambda e: e.ts):
        pipe.process(e)
    pipe.process(ev("late", T0 + 10 * 3600))
    out = pipe.drain()
    assert out.alerts and out.alerts[0].subject_type == "cluster"
    assert [c.cluster_id for c in out.clusters] == [out.alerts[0].cluster_id]
    by_account = {r.account_id: r for r in out.risks}
    assert set(by_account) >= {f"hydra{i}" for i in range(12)}
    r = by_account["hydra5"]
    assert r.cluster_id == out.clusters[0].cluster_id and r.risk >= 0.7
    assert r.reasons[0].signal == "cluster_membership"
    assert pipe.risk("late").cluster_id is None and pipe.risk("late").risk == 0.0
    assert sum(out.counts.values()) == len(hydra()) + 1


def test_odd_input_does_not_crash():
    stage = LinkageStage(LinkageConfig())
    stage.process(ev("b", T0, ip="2001:db8::1", prompt="", prompt_fingerprint="00ff00ff00ff00ff"))
    stage.process(ev("c", T0 - 10_000.0, ip="10.0.0.1"))  # out of order
    stage.observe_features("b", {"rate": float("nan"), "x": 1.0}, T0)
    stage.observe_features("nobody", {"rate": 1.0}, T0)
    assert stage.stats()["accounts"] == 2
    assert net_key("2001:db8::1") == "n:2001:db8::/64"


def test_config_rejects_unknown_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from distillguard.settings import CONFIG_ENV, Settings

    bad = tmp_path / "l.yaml"
    monkeypatch.setenv(CONFIG_ENV, str(bad))
    bad.write_text("detectors:\n  linkage:\n    link_treshold: 2\n")
    with pytest.raises(ValueError, match="link_treshold"):
        Settings()
    bad.write_text("detectors:\n  linkage:\n    kinds:\n      payment: {weight: 2.0}\n")
    cfg = Settings().detectors.linkage
    assert cfg.kind("payment").weight == 2.0 and cfg.kind("payment").cap == 1.4


def test_linked_pipeline_checkpoint_round_trip():
    events = sorted(hydra(seed=9), key=lambda e: e.ts)
    a = LinkedPipeline(CountingPipeline())
    for e in events[: len(events) // 3]:
        a.process(e)
    a.drain()
    b = LinkedPipeline(CountingPipeline())
    b.restore(a.snapshot_shared())
    for e in events[len(events) // 3 :]:
        assert a.process(e) == b.process(e)
    assert a.drain().clusters == b.drain().clusters
    assert a.risk("hydra1") == b.risk("hydra1") and a.risk("hydra1").cluster_id is not None
    with pytest.raises(ValueError):
        b.restore(b"\x00garbage")
    assert b.risk("hydra1").cluster_id is not None  # a bad checkpoint changed nothing


def test_linked_pipeline_with_account_pipeline_is_checkpointable():
    from distillguard.detectors.account_pipeline import AccountPipeline
    from distillguard.settings import get_settings

    detectors = get_settings().detectors
    a = LinkedPipeline(AccountPipeline(detectors))
    for e in sorted(hydra(seed=11), key=lambda e: e.ts):
        a.process(e)
    a.drain()
    b = LinkedPipeline(AccountPipeline(detectors))
    b.restore(a.snapshot_shared())
    b.restore_accounts(a.snapshot_accounts(a.accounts()))
    assert sorted(b.accounts()) == sorted(a.accounts())
    assert b.risk("hydra2") == a.risk("hydra2")
    assert b.linkage.cluster_of("hydra2") == a.linkage.cluster_of("hydra2") is not None


def test_behaviour_hook_adds_weak_evidence_only():
    stage = LinkageStage(LinkageConfig())
    for i, acct in enumerate(("a", "b", "c")):
        stage.process(ev(acct, T0 + i))
    profile = {"rate": 40.0, "cot": 0.9, "logprobs": 1.0}
    for t in range(0, 5 * 600, 600):
        for acct in ("a", "b"):
            assert stage.wants_features(acct, T0 + t + 10)
            stage.observe_features(acct, profile, T0 + t + 10)
            assert not stage.wants_features(acct, T0 + t + 20)  # throttled
        stage.observe_features("c", {"rate": 1.0, "cot": 0.0, "logprobs": 0.0}, T0 + t + 10)
    g = stage._graph
    same = g.link_weight(g.holders["a"], g.holders["b"], T0 + 3000)
    assert 0 < same <= LinkageConfig().group_caps["behaviour"] < LinkageConfig().link_threshold
    assert g.link_weight(g.holders["a"], g.holders["c"], T0 + 3000) < same


def test_build_pipeline_linked_choice():
    from distillguard.detectors.pipeline import build_pipeline
    from distillguard.settings import Detectors, Settings

    pipe = build_pipeline(Settings(detectors=Detectors(pipeline="linked")))
    assert isinstance(pipe, LinkedPipeline)
    assert type(pipe.account).__name__ == "AccountPipeline"


def test_onset_span_follows_expiry():
    """Expired onsets shrink the span that chance co-onsets are judged against."""
    g = EvidenceGraph(LinkageConfig())
    h = g.holder("a", T0)
    for k in range(5):
        g.observe(h, f"y:{1000 + 10 * k}", T0 + k)
    assert h.onset_first == 1000 and h.onsets == 5
    g.forget(h, "y:1000")
    g.forget(h, "y:1010")
    assert h.onset_first == 1020 and h.onsets == 3
