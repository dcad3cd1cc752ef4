"""Co-activity fleets (``fleet.py``) on small synthetic streams.

A fleet whose accounts wake in the same windows, each one pair of them sharing only a
bin or two, must come out as one dense group; independent accounts, at like volume or
twenty times busier, must form none; an honest group acting together is found by the
peeling but, its members not extracting, never keyed nor alerted; a restored stage
goes on exactly as the one that kept running.
"""

from __future__ import annotations

import itertools
import random

from distillguard.detectors.linkage import LinkageConfig, LinkageStage
from distillguard.detectors.linkage.fleet import CoActivityFleets
from distillguard.events import RequestEvent
from tests.test_linkage import ev, run
from tests.test_linkage_synchrony import DAY, T0, own

DAYS = 3


def people(rng: random.Random, n: int, per_day: int, name: str = "user") -> list[RequestEvent]:
    """Honest accounts sending a request now and then, independently of each other."""
    return [
        ev(f"{name}{i}", T0 + rng.uniform(0, DAYS * DAY), **own(i, "user"))
        for i in range(n)
        for _ in range(per_day * DAYS)
    ]


def fleet(rng: random.Random, n: int, name: str = "fleet") -> list[RequestEvent]:
    """A controller waking the fleet every 3 h for 30 minutes; each account joins 60%
    of the wake-ups with one request at a random minute of the window."""
    wakes = [T0 + 1_800.0 + k * 3 * 3_600.0 for k in range(DAYS * 8)]
    return [
        ev(f"{name}{i}", t + rng.uniform(0, 1_800), **own(i, "fleet"))
        for t in wakes
        for i in range(n)
        if rng.random() < 0.6
    ]


def feed(fl: CoActivityFleets, events: list[RequestEvent]) -> None:
    """Onsets as the stage defines them: a request after >= 10 min of the account's silence."""
    last: dict[str, float] = {}
    for e in sorted(events, key=lambda e: e.ts):
        if e.account_id not in last or e.ts - last[e.account_id] >= 600:
            fl.onset(e.account_id, e.ts)
        last[e.account_id] = e.ts


def fleets() -> CoActivityFleets:
    return CoActivityFleets.from_config(LinkageConfig())


def test_a_fleet_tied_only_by_weak_co_activity_comes_out_as_one_group() -> None:
    rng = random.Random(4)
    events = people(rng, 80, 4) + fleet(rng, 15)
    fl = fleets()
    feed(fl, events)
    members = [f"fleet{i}" for i in range(15)]
    # weak pairwise: a pair of siblings shares two or three 10-minute bins in three days
    pairs = itertools.combinations(members, 2)
    shared = [len(set(fl.recent[a]) & set(fl.recent[b])) for a, b in pairs]
    assert sum(shared) / len(shared) < 3.0
    # one group, of fleet accounts only; the peeling may leave out a sibling tied weakly
    (group,) = fl.groups(T0 + DAYS * DAY)
    assert set(group) <= set(members) and len(group) >= 10


def test_independent_accounts_of_like_and_of_twenty_times_the_volume_form_no_group() -> None:
    rng = random.Random(5)
    events = people(rng, 80, 4)
    events += [  # busy honest accounts: 20x the volume, at any hour
        ev(f"busy{i}", T0 + rng.uniform(0, DAYS * DAY), **own(100 + i, "user"))
        for i in range(6)
        for _ in range(80 * DAYS)
    ]
    fl = fleets()
    feed(fl, events)
    assert len(fl.counts) > 300  # the bins were there to be judged
    assert fl.groups(T0 + DAYS * DAY) == []


def test_an_honest_group_acting_together_is_found_but_neither_keyed_nor_alerted() -> None:
    rng = random.Random(4)
    events = people(rng, 80, 4) + fleet(rng, 15, name="student")
    students = {f"student{i}" for i in range(15)}
    fl = fleets()
    feed(fl, events)
    (group,) = fl.groups(T0 + DAYS * DAY)  # dense, as a fleet is
    assert set(group) <= students and len(group) >= 10
    honest = LinkageStage(LinkageConfig(), member_extraction=lambda account: 0.0)
    assert run(honest, events) == []
    holders = honest.to_state().graph.holders
    assert not any(k[0] == "f" for h in holders for k in h.keys)
    assert all(honest.cluster_risk(s) == 0.0 for s in students)
    # the same group, extracting, is keyed: the gate, not the evidence, kept it out
    extracting = LinkageStage(LinkageConfig(), member_extraction=lambda account: 2.0)
    run(extracting, events)
    state = extracting.to_state().graph
    keyed = {h.id for h in state.holders if any(k[0] == "f" for k in h.keys)}
    assert keyed <= students and len(keyed) >= 8


def test_a_restored_stage_finds_the_same_fleets_as_the_one_that_kept_running() -> None:
    rng = random.Random(4)
    events = sorted(people(rng, 80, 4) + fleet(rng, 15), key=lambda e: e.ts)
    half = len(events) * 2 // 3
    a = LinkageStage(LinkageConfig(), member_extraction=lambda account: 2.0)
    run(a, events[:half])
    b = LinkageStage(LinkageConfig(), member_extraction=lambda account: 2.0)
    b.restore(a.snapshot())
    assert b.snapshot() == a.snapshot()
    run(a, events[half:])
    run(b, events[half:])
    assert b.snapshot() == a.snapshot()
    fa, fb = a.to_state().fleet, b.to_state().fleet
    assert fa == fb and fa.recent
    keyed = {h.id for h in b.to_state().graph.holders if any(k[0] == "f" for k in h.keys)}
    assert keyed and all(k.startswith("fleet") for k in keyed)


def test_a_denser_honest_group_does_not_use_up_the_peeling_before_the_fleet() -> None:
    """The peeling gives out its groups densest first, and only ``fleet_max_groups`` of
    them: a class that meets for ten minutes every three hours, nearly all of it, is
    denser than a fleet spread over its controller's half-hour windows. The stage peels
    only accounts that pass the extraction gate, so the class takes no slot."""
    rng = random.Random(4)
    lectures = [T0 + 5_400.0 + k * 3 * 3_600.0 for k in range(DAYS * 8)]
    students = [
        ev(f"student{i}", t + rng.uniform(0, 600), **own(200 + i, "user"))
        for t in lectures
        for i in range(15)
        if rng.random() < 0.9
    ]
    events = people(rng, 80, 4) + fleet(rng, 15) + students
    cfg = LinkageConfig(fleet_max_groups=1)
    fl = CoActivityFleets.from_config(cfg)
    feed(fl, events)
    now = T0 + DAYS * DAY
    (densest,) = fl.groups(now)
    assert all(a.startswith("student") for a in densest)  # the class comes out first
    (group,) = fl.groups(now, eligible=lambda a: a.startswith("fleet"))
    assert len(group) >= 10 and all(a.startswith("fleet") for a in group)
    stage = LinkageStage(cfg, member_extraction=lambda a: 2.0 if a.startswith("fleet") else 0.0)
    run(stage, events)
    keyed = {h.id for h in stage.to_state().graph.holders if any(k[0] == "f" for k in h.keys)}
    assert len(keyed) >= 10 and all(a.startswith("fleet") for a in keyed)
