"""Shared inter-arrival sequences (``detectors/linkage/cadence.py``) through the linkage stage.

Accounts that replay one recorded person's timing from their own start link; people
with gaps drawn afresh, metronomes and members of one org do not; the state survives a
checkpoint mid-run.
"""

from __future__ import annotations

import random

import pytest

from distillguard.detectors.linkage import LinkageConfig, LinkageStage
from distillguard.detectors.linkage.cadence import LABELS, gap_bin
from distillguard.events import RequestEvent
from tests.test_linkage import T0, ev


def human_gaps(rng: random.Random, n: int) -> list[float]:
    """Think time within sessions, and a few hours between them."""
    return [
        rng.uniform(3_600, 5 * 3_600) if rng.random() < 0.1 else rng.lognormvariate(3.7, 0.8)
        for _ in range(n)
    ]


def replaying(acct: str, recording: list[float], start: float, at: int, **kw: str) -> list:
    """``acct`` replays ``recording`` from gap ``at`` on, with network jitter."""
    rng = random.Random(acct)
    ts, out = start, []
    for gap in recording[at:] + recording[:at]:
        out.append(ev(acct, ts + rng.gauss(0.0, 0.3), **kw))
        ts += gap
    return out


def person(acct: str, start: float, n: int) -> list:
    rng = random.Random(acct)
    ts, out = start, []
    for gap in human_gaps(rng, n):
        out.append(ev(acct, ts))
        ts += gap
    return out


def run(stage: LinkageStage, events: list[RequestEvent]) -> None:
    for e in sorted(events, key=lambda e: e.ts):
        stage.process(e)


def together(stage: LinkageStage, a: str, b: str) -> bool:
    ca = stage.cluster_of(a)
    return ca is not None and ca == stage.cluster_of(b)


def test_gap_labels_are_distinct_and_a_bin_holds_its_gap() -> None:
    assert len(set(LABELS)) == len(LABELS)
    for gap in (2.0, 7.3, 45.0, 600.0, 3_600.0, 80_000.0):
        b = gap_bin(gap)
        assert float(LABELS[b][:-1]) <= gap < float(LABELS[b + 1][:-1]) * 1.001


def three_replayers() -> tuple[list[RequestEvent], float]:
    """Three accounts replaying one recording, each from its own point of it, hours
    apart, and the time until which all three are active."""
    recording = human_gaps(random.Random(5), 150)
    events = []
    for i, (start, at) in enumerate([(0.0, 0), (7_000.0, 40), (19_000.0, 75)]):
        events += replaying(f"rec{i}", recording, T0 + start, at)
    return events, min(max(e.ts for e in events if e.account_id == f"rec{i}") for i in range(3))


def test_accounts_replaying_one_recording_link_and_people_do_not() -> None:
    events, until = three_replayers()
    # people of the same volume and rhythm, gaps drawn afresh
    events += [e for i in range(40) for e in person(f"p{i}", T0 + 900.0 * i, 150)]
    # scripts on one fixed sleep: a metronome is shared by unrelated customers
    for i in range(3):
        events += [ev(f"metro{i}", T0 + 50.0 * i + 7.0 * k) for k in range(300)]
    stage = LinkageStage(LinkageConfig())
    run(stage, [e for e in events if e.ts <= until])  # judged while all three are active
    assert together(stage, "rec0", "rec1") and together(stage, "rec1", "rec2")
    cid = stage.cluster_of("rec0")
    assert cid is not None and stage.members(cid) == ["rec0", "rec1", "rec2"]
    assert all(stage.cluster_of(f"p{i}") is None for i in range(40))
    assert all(stage.cluster_of(f"metro{i}") is None for i in range(3))


def shared_runs(stage: LinkageStage, a: str, b: str) -> int:
    keys = [{k for k in stage._graph.holders[x].keys if k[0] == "g"} for x in (a, b)]
    return len(keys[0] & keys[1])


@pytest.mark.parametrize(("overlap", "runs", "linked"), [(29, 2, False), (22, 4, True)])
def test_a_link_needs_three_shared_runs(overlap: int, runs: int, linked: bool) -> None:
    """Two accounts that share one stretch of a recording: two sampled runs in common
    (what chance and scripted backends reach) do not link, four do."""
    recording = human_gaps(random.Random(8), 200)
    events = replaying("a", recording[:100], T0, 0)
    events += replaying("b", recording[100 - overlap :], T0 + 3_000.0, 0)
    stage = LinkageStage(LinkageConfig())
    run(stage, events)
    assert shared_runs(stage, "a", "b") == runs
    assert together(stage, "a", "b") is linked


def test_one_org_replaying_one_job_is_one_customer() -> None:
    recording = human_gaps(random.Random(9), 150)
    events = []
    for i, (start, at) in enumerate([(0.0, 0), (5_000.0, 30), (11_000.0, 60)]):
        events += replaying(f"svc{i}", recording, T0 + start, at, org_id="org_acme")
    stage = LinkageStage(LinkageConfig())
    run(stage, events)
    assert stage.cluster_of("svc0") is None


def test_cadence_state_survives_a_checkpoint_mid_run() -> None:
    events, until = three_replayers()
    events = sorted((e for e in events if e.ts <= until), key=lambda e: e.ts)
    whole, first = LinkageStage(LinkageConfig()), LinkageStage(LinkageConfig())
    run(whole, events)
    half = len(events) // 2
    run(first, events[:half])
    resumed = LinkageStage(LinkageConfig())
    resumed.restore(first.snapshot())
    run(resumed, events[half:])
    assert together(whole, "rec0", "rec1") and together(whole, "rec1", "rec2")
    assert resumed.snapshot() == whole.snapshot()


def test_cadence_keys_per_account_are_bounded() -> None:
    recording = human_gaps(random.Random(12), 600)
    events = replaying("busy", recording, T0, 0) + replaying("twin", recording, T0 + 900.0, 0)
    stage = LinkageStage(LinkageConfig(cadence_max_keys=5))
    run(stage, events)
    held = [k for k in stage._graph.holders["busy"].keys if k[0] == "g"]
    assert len(held) == 5 == stage._graph.holders["busy"].gap_keys
    # one account alone never holds a run: it is remembered once, in the table
    alone = LinkageStage(LinkageConfig())
    run(alone, replaying("solo", recording, T0, 0))
    assert alone._graph.holders["solo"].gap_keys == 0 and alone._runs.seen
