"""Controllers' clocks (``phase.py``) on small synthetic streams.

A swarm whose scheduler sends most requests on its ticks, each account on its own
card, address and client and a few requests a day, must be found locked to that clock
and come out as one alerted cluster; people sending as many requests at random must
not be locked; unrelated customers whose jobs fire on the wall clock's five minutes
share a phase too, and are no controller; a scheduler's accounts that do not extract
are not keyed; a restored stage goes on exactly as the one that kept running.
"""

from __future__ import annotations

import random

from distillguard.detectors.linkage import LinkageConfig, LinkageStage
from distillguard.detectors.linkage.phase import PhaseClocks
from distillguard.events import RequestEvent
from tests.test_linkage import ev, run
from tests.test_linkage_synchrony import DAY, T0, own

DAYS = 3
PER_DAY = 8


def people(rng: random.Random, n: int) -> list[RequestEvent]:
    """Honest accounts sending a request now and then, independently of each other."""
    return [
        ev(f"user{i}", T0 + rng.uniform(0, DAYS * DAY), **own(i, "user"))
        for i in range(n)
        for _ in range(PER_DAY * DAYS)
    ]


def on_clock(
    rng: random.Random, n: int, period: float, name: str = "swarm", on_tick: float = 0.75
) -> list[RequestEvent]:
    """Accounts whose requests leave on a scheduler's ticks (``on_tick`` of them, within
    20 s of one), the rest at random: as many requests a day as the people send."""
    ticks = int(DAYS * DAY // period)
    events = []
    for i in range(n):
        for _ in range(PER_DAY * DAYS):
            if rng.random() < on_tick:
                ts = T0 + period * rng.randrange(ticks) + rng.uniform(0, 20)
            else:
                ts = T0 + rng.uniform(0, DAYS * DAY)
            events.append(ev(f"{name}{i}", ts, **own(i, name)))
    return events


def keyed(stage: LinkageStage) -> set[str]:
    return {h.id for h in stage.to_state().graph.holders if any(k[0] == "q" for k in h.keys)}


def test_a_swarm_on_one_clock_is_one_alerted_cluster_and_people_are_not_locked() -> None:
    rng = random.Random(7)
    events = people(rng, 100) + on_clock(rng, 60, 431.0)
    stage = LinkageStage(LinkageConfig(), member_extraction=lambda account: 2.0)
    alerts = run(stage, events)
    locked = keyed(stage)
    swarm = {f"swarm{i}" for i in range(60)}
    assert locked <= swarm and len(locked) >= 45
    # nothing else ties them (a card, an address and a client each): the clock links them
    (cid,) = {c for a in locked if (c := stage.cluster_of(a)) is not None}
    assert swarm >= set(stage.members(cid)) and len(stage.members(cid)) >= 45
    assert alerts and all(set(a.members) <= swarm for a in alerts)
    assert all(stage.cluster_of(f"user{i}") is None for i in range(100))


def test_unrelated_customers_on_the_wall_clocks_five_minutes_are_no_controller() -> None:
    rng = random.Random(8)
    base = people(rng, 100)
    cron = on_clock(rng, 60, 300.0, name="cron", on_tick=0.9)
    clocks = PhaseClocks.from_config(LinkageConfig())
    for e in sorted(base + cron, key=lambda e: e.ts):
        clocks.onset(e.account_id, e.ts)
    assert clocks.clocks(T0 + DAYS * DAY) == []
    # the same schedule on a period that no wall clock ticks at is a controller
    rng = random.Random(8)
    drifted = people(rng, 100) + on_clock(rng, 60, 307.0, name="cron", on_tick=0.9)
    clocks = PhaseClocks.from_config(LinkageConfig())
    for e in sorted(drifted, key=lambda e: e.ts):
        clocks.onset(e.account_id, e.ts)
    (clock,) = clocks.clocks(T0 + DAYS * DAY)
    assert round(clock.period_s) == 307 and len(clock.members) >= 45


def test_a_schedulers_accounts_that_do_not_extract_are_not_keyed() -> None:
    rng = random.Random(7)
    events = people(rng, 100) + on_clock(rng, 60, 431.0)
    stage = LinkageStage(LinkageConfig(), member_extraction=lambda account: 0.0)
    assert run(stage, events) == []
    assert keyed(stage) == set()


def test_a_restored_stage_locks_the_same_accounts_as_the_one_that_kept_running() -> None:
    rng = random.Random(7)
    events = sorted(people(rng, 100) + on_clock(rng, 60, 431.0), key=lambda e: e.ts)
    half = len(events) * 2 // 3
    a = LinkageStage(LinkageConfig(), member_extraction=lambda account: 2.0)
    run(a, events[:half])
    b = LinkageStage(LinkageConfig(), member_extraction=lambda account: 2.0)
    b.restore(a.snapshot())
    assert b.snapshot() == a.snapshot()
    run(a, events[half:])
    run(b, events[half:])
    assert b.snapshot() == a.snapshot()
    assert a.to_state().phase == b.to_state().phase and a.to_state().phase.recent
    assert keyed(b) and keyed(b) == keyed(a)
