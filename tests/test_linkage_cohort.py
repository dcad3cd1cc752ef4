"""Cohort evidence on crafted sequences: new accounts co-starting behind a proxy pool."""

from __future__ import annotations

import random

from distillguard.detectors.linkage import LinkageConfig, LinkageStage
from distillguard.detectors.linkage.cohort import find_cohorts
from distillguard.detectors.linkage.graph import Holder
from distillguard.events import RequestEvent
from tests.test_linkage import ev, run

T0 = 1_790_000_000.0
HOUR = 3600.0


def fingerprint(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def background(rng: random.Random, n: int = 300) -> list[RequestEvent]:
    """Established honest accounts, each on its own home network, over two hours."""
    events = []
    for i in range(n):
        asn = 64_512 + i % 40
        for _ in range(rng.randint(1, 4)):
            events.append(
                ev(
                    f"user{i}",
                    T0 + rng.uniform(0, 2 * HOUR),
                    ip=f"10.{i // 200}.{i % 200}.{rng.randint(1, 254)}",
                    asn=asn,
                    user_agent="openai-python/1.54.3",
                    prompt_fingerprint=fingerprint(rng),
                )
            )
    return events


def quiet_hydra(rng: random.Random, start: float, n: int = 20) -> list[RequestEvent]:
    """New accounts waking together: one or two requests each through a two-ASN pool.

    Pairwise they share at most one /24 (no evidence): each has one address or two.
    """
    pool = [(f"198.51.{100 + j % 3}.{rng.randint(1, 254)}", 64_900) for j in range(6)]
    pool += [(f"203.0.{113 + j % 3}.{rng.randint(1, 254)}", 64_901) for j in range(6)]
    events = []
    for i in range(n):
        for _ in range(1 + i % 2):
            ip, asn = rng.choice(pool)
            events.append(
                ev(
                    f"hydra{i}",
                    start + rng.uniform(0, 15 * 60),
                    ip=ip,
                    asn=asn,
                    user_agent=rng.choice(["httpx/0.27", "aiohttp/3.9", "node-fetch/3"]),
                    prompt_fingerprint=fingerprint(rng),
                )
            )
    return events


def campus_class(rng: random.Random, start: float, n: int = 12) -> list[RequestEvent]:
    """A class of new students starting in the same minute behind one campus NAT."""
    nat = [f"192.0.{2 + j % 2}.{10 + j}" for j in range(3)]
    return [
        ev(
            f"student{i}",
            start + rng.uniform(0, 60) + k * 120,
            ip=rng.choice(nat),
            asn=64_700,
            user_agent="openai-python/1.54.3",
            prompt_fingerprint=fingerprint(rng),
        )
        for i in range(n)
        for k in range(2)
    ]


def test_quiet_hydra_of_new_accounts_is_linked_within_minutes():
    rng = random.Random(5)
    start = T0 + 2 * HOUR
    events = background(rng) + quiet_hydra(rng, start)
    events.append(ev("user0", start + HOUR, ip="10.0.0.9", asn=64_512))  # moves time on
    stage = LinkageStage(LinkageConfig())
    alerts = run(stage, events)
    hydra = [a for a in alerts if any(m.startswith("hydra") for m in a.members)]
    assert hydra, "the co-starting pool raised no cluster alert"
    assert all(m.startswith("hydra") for a in alerts for m in a.members)
    first = hydra[0]
    assert len(first.members) >= 6
    assert "cohort" in {e.kind for e in first.evidence}
    # well inside the 2-hour target: within minutes of the burst
    assert start <= _ts(first.created_at) <= start + 30 * 60
    # and it is the cohort that does it: without it the same traffic links nothing
    plain = LinkageStage(LinkageConfig(cohort_min_size=10_000))
    assert run(plain, events) == []


def test_campus_class_starting_together_is_not_linked():
    rng = random.Random(6)
    start = T0 + 2 * HOUR
    events = background(rng) + campus_class(rng, start)
    events.append(ev("user0", start + HOUR, ip="10.0.0.9", asn=64_512))
    stage = LinkageStage(LinkageConfig())
    assert run(stage, events) == []
    assert all(stage.cluster_of(f"student{i}") is None for i in range(12))


def test_cloud_tenants_at_cold_start_are_not_a_cohort():
    """A stage's first minutes: everyone is new, busy backends share cloud networks."""
    rng = random.Random(7)
    events = []
    for i in range(30):
        asn = 16_509 if i % 2 else 15_169
        for k in range(10):
            events.append(
                ev(
                    f"backend{i}",
                    T0 + k * 30 + rng.uniform(0, 20),
                    ip=f"{52 if i % 2 else 35}.1.{i % 4}.{rng.randint(1, 254)}",
                    asn=asn,
                    prompt_fingerprint=fingerprint(rng),
                )
            )
    events.append(ev("backend0", T0 + HOUR, ip="35.1.0.9", asn=15_169))
    stage = LinkageStage(LinkageConfig())
    assert run(stage, events) == []


def test_snapshot_mid_cohort_continues_identically():
    rng = random.Random(8)
    start = T0 + 2 * HOUR
    events = sorted(background(rng) + quiet_hydra(rng, start), key=lambda e: e.ts)
    events.append(ev("user0", start + HOUR, ip="10.0.0.9", asn=64_512))
    cut = next(i for i, e in enumerate(events) if e.ts > start + 6 * 60)
    whole = LinkageStage(LinkageConfig())
    expected = run(whole, events)
    first = LinkageStage(LinkageConfig())
    before = run(first, events[:cut])
    second = LinkageStage(LinkageConfig())
    second.restore(first.snapshot())
    after = run(second, events[cut:])
    assert expected and before + after == expected
    assert second.snapshot() == whole.snapshot()


def test_find_cohorts_needs_size_and_two_shared_asns():
    def holder(name: str, *keys: str) -> Holder:
        h = Holder(name, 0.0)
        h.keys = dict.fromkeys(keys, 0.0)
        return h

    pool = [holder(f"h{i}", "a:1", "a:2", f"n:10.0.{i % 2}", f"n:10.1.{i % 3}") for i in range(6)]
    assert [len(g) for g in find_cohorts(pool, 6, 2)] == [6]
    assert find_cohorts(pool[:5], 6, 2) == []  # too few
    one_asn = [holder(h.id, "a:1", *[k for k in h.keys if k[0] == "n"]) for h in pool]
    assert find_cohorts(one_asn, 6, 2) == []  # a NAT's several /24s in one ASN
    unrelated = [holder(f"u{i}", "a:1", "a:2", f"n:10.9.{i}") for i in range(6)]
    assert find_cohorts(unrelated, 6, 2) == []  # same ASNs, no shared network: not tied
    # a network judged common by the caller ties nobody
    assert find_cohorts(pool, 6, 2, is_rare=lambda key: not key.startswith("n:10.0")) == []


def _ts(iso_text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()
