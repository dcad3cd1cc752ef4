"""Campaign windows (``synchrony.py``) on small synthetic streams.

A fleet that one scheduler wakes together, each account on its own card, address and
client (nothing else to link it), must come out as one cluster; independent accounts,
quiet or twenty times busier, must not be flagged at all; a course that starts work
at the same lecture minute every day may form a cluster but, its members not
extracting, never an alert.
"""

from __future__ import annotations

import random

from distillguard.detectors.linkage import LinkageConfig, LinkageStage
from distillguard.detectors.linkage.synchrony import CampaignWindows, binomial_surprise
from distillguard.events import RequestEvent
from tests.test_linkage import ev, run

T0 = 1_790_000_000.0
DAY = 86_400.0


def own(i: int, name: str) -> dict[str, str]:
    """A card, a home address (own /24) and a client of the account's own."""
    return {
        "ip": f"10.{i // 200}.{i % 200}.7" if name == "user" else f"172.{16 + i}.3.9",
        "payment_fingerprint": f"card-{name}{i}",
        "user_agent": f"client/{name}{i}",
    }


def quiet_people(rng: random.Random, n: int, per_day: int, days: int) -> list[RequestEvent]:
    """Honest accounts starting a request now and then, independently of each other."""
    return [
        ev(f"user{i}", T0 + rng.uniform(0, days * DAY), **own(i, "user"))
        for i in range(n)
        for _ in range(per_day * days)
    ]


def fleet(rng: random.Random, n: int, days: int, period_s: float = 2_100.0) -> list[RequestEvent]:
    """A scheduler ticking every ``period_s``; each tick wakes ~60% of the fleet."""
    ticks = [T0 + 1_000.0 + k * period_s for k in range(int(days * DAY / period_s))]
    return [
        ev(f"fleet{i}", t + rng.uniform(0, 30), **own(i, "fleet"))
        for t in ticks
        for i in range(n)
        if rng.random() < 0.6
    ]


def windows() -> CampaignWindows:
    return CampaignWindows.from_config(LinkageConfig())


def feed(cw: CampaignWindows, events: list[RequestEvent]) -> None:
    """Onsets as the stage defines them: a request after >= 10 min of the account's silence."""
    last: dict[str, float] = {}
    for e in sorted(events, key=lambda e: e.ts):
        if e.account_id not in last or e.ts - last[e.account_id] >= 600:
            cw.onset(e.account_id, e.ts)
        last[e.account_id] = e.ts


def test_binomial_surprise_matches_the_exact_tail() -> None:
    # P(X >= 3), X ~ Binomial(4, 0.5) = 5/16
    assert abs(binomial_surprise(3, 4, 0.5) - 0.50515) < 1e-4
    assert binomial_surprise(5, 4, 0.5) == 300.0  # impossible by chance
    assert binomial_surprise(2, 40, 0.5) < 1e-6  # far below the chance rate


def test_synchronised_low_volume_fleet_links_into_one_cluster() -> None:
    rng = random.Random(11)
    events = quiet_people(rng, 40, 10, 2) + fleet(rng, 12, 2)
    # shared burst onsets alone (the timing group, capped below the threshold) do not link;
    # the fleet's ticks are regular, so controllers' clocks (phase.py) are off here too,
    # and so is cadence (cadence.py): its accounts' gaps are multiples of one period
    without = LinkageStage(
        LinkageConfig(campaign_min_size=1_000, phase_max_clocks=0, cadence_max_keys=0)
    )
    run(without, events)
    assert all(without.cluster_of(f"fleet{i}") is None for i in range(12))
    stage = LinkageStage(LinkageConfig())
    alerts = run(stage, events)
    clusters = {stage.cluster_of(f"fleet{i}") for i in range(12)}
    assert len(clusters) == 1 and None not in clusters
    assert all(stage.cluster_of(f"user{i}") is None for i in range(40))
    (cid,) = clusters
    alerted = [a for a in alerts if a.subject_id == cid]
    assert alerted and "synchrony" in {e.kind for e in alerted[-1].evidence}
    assert set(alerted[-1].members) == {f"fleet{i}" for i in range(12)}


def test_independent_accounts_of_like_and_of_twenty_times_the_volume_are_not_flagged() -> None:
    rng = random.Random(5)
    cw = windows()
    events = quiet_people(rng, 60, 12, 3)
    # busy honest accounts: 20x the volume, active at any hour
    events += [
        ev(f"busy{i}", T0 + rng.uniform(0, 3 * DAY), **own(100 + i, "user"))
        for i in range(6)
        for _ in range(240 * 3)
    ]
    feed(cw, events)
    assert cw.bins_judged > 2_000
    assert cw.synchronised() == set()
    assert cw.groups(T0 + 3 * DAY, 6) == []
    # the same background with a fleet in it: only the fleet is flagged
    cw2 = windows()
    feed(cw2, events + fleet(rng, 10, 3))
    assert cw2.synchronised() == {f"fleet{i}" for i in range(10)}


def test_a_course_starting_at_the_lecture_minute_every_day_is_never_alerted() -> None:
    rng = random.Random(8)
    lectures = [T0 + d * DAY + 9 * 3_600 for d in range(6)]
    course = [
        ev(f"student{i}", t + rng.uniform(0, 60), **own(i, "fleet"))
        for t in lectures
        for i in range(30)
    ]
    # and a few requests of their own each day
    course += [
        ev(f"student{i}", T0 + rng.uniform(0, 6 * DAY), **own(i, "fleet"))
        for i in range(30)
        for _ in range(6)
    ]
    stage = LinkageStage(LinkageConfig(), member_extraction=lambda account: 0.0)
    alerts = run(stage, quiet_people(rng, 40, 8, 6) + course)
    students = {stage.cluster_of(f"student{i}") for i in range(30)}
    assert students != {None}  # the gate, not the evidence, keeps them unalerted
    assert alerts == []
    assert all(stage.cluster_risk(f"student{i}") == 0.0 for i in range(30))


def test_a_restored_stage_groups_exactly_as_the_one_that_kept_running() -> None:
    rng = random.Random(2)
    events = sorted(quiet_people(rng, 30, 10, 2) + fleet(rng, 10, 2), key=lambda e: e.ts)
    half = len(events) // 2
    a = LinkageStage(LinkageConfig())
    run(a, events[:half])
    b = LinkageStage(LinkageConfig())
    b.restore(a.snapshot())
    assert b.snapshot() == a.snapshot()
    run(a, events[half:])
    run(b, events[half:])
    assert b.snapshot() == a.snapshot()
    assert (
        {a.cluster_of(f"fleet{i}") for i in range(10)}
        == {b.cluster_of(f"fleet{i}") for i in range(10)}
        != {None}
    )
