"""Honest coordinated groups share a card, a NAT, a template or a clock, as described.

If they did not, "never flags honest groups" would be an easy promise; these tests pin
down the coordination each one shows (DESIGN.md, "Honest groups act together too"),
read back from the JSON events a detector sees.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from distillguard.sim import traces
from distillguard.sim.engine import generate, write_files
from distillguard.sim.honest_groups import (
    ASSIGNMENT_TEMPLATES,
    HONEST_GROUPS,
    KIT_SYSTEM_PROMPT,
    KIT_USER_AGENT,
)
from distillguard.sim.scenario import load_scenario

START = datetime.fromisoformat("2026-11-16T00:00:00+00:00").timestamp()
SCENARIO = """
name: honest
seed: 23
start: "2026-11-16T00:00:00Z"
days: 4
models:
  - {name: m-pro, role: flagship}
  - {name: m-mini, role: mini}
benign:
  hobbyist: {accounts: 30}
  company_card: {accounts: 30}
  eval_vendor: {accounts: 20, items: 60}
  university_course: {accounts: 150}
  hackathon: {accounts: 36}
  household: {accounts: 14}
"""


def _ts(e: dict) -> float:
    return datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict]]]:
    """archetype -> account -> its events, as written to the JSON Lines file."""
    d = tmp_path_factory.mktemp("honest")
    (d / "s.yaml").write_text(SCENARIO)
    write_files(generate(load_scenario(str(d / "s.yaml"))), d / "e.jsonl", d / "l.jsonl")
    arch = {
        r["account_id"]: r["archetype"]
        for r in map(orjson.loads, (d / "l.jsonl").read_bytes().splitlines())
    }
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for line in (d / "e.jsonl").read_bytes().splitlines():
        e = orjson.loads(line)
        out[arch[e["account_id"]]][e["account_id"]].append(e)
    return out


def test_every_honest_group_is_labelled_benign_under_its_own_name(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    labels = generate(load_scenario(str(tmp_path / "s.yaml"))).labels()
    names = {r["archetype"] for r in labels if r["archetype"] in HONEST_GROUPS}
    assert names == set(HONEST_GROUPS)
    assert all(r["label"] == "benign" and r["campaign"] is None for r in labels)


def test_company_shares_one_card_and_some_accounts_have_no_org(groups: dict) -> None:
    accounts = groups["company_card"]
    assert len(accounts) == 30
    cards = {e["payment_fingerprint"] for evs in accounts.values() for e in evs}
    assert len(cards) == 1
    orgs = [{e.get("org_id") for e in evs} for evs in accounts.values()]
    without = sum(1 for o in orgs if o == {None})  # the field is absent, not empty
    assert 3 <= without <= 20
    assert len({o for s in orgs for o in s if o}) == 1
    assert all(len(o) == 1 for o in orgs)


def test_eval_vendor_runs_one_benchmark_nightly_from_one_org(groups: dict) -> None:
    accounts = groups["eval_vendor"]
    assert len(accounts) == 20
    evs = [e for a in accounts.values() for e in a]
    assert (
        len({e["org_id"] for e in evs}) == 1 and len({e["payment_fingerprint"] for e in evs}) == 1
    )
    assert {e["temperature"] for e in evs} == {0.0}
    # the same benchmark, in the same order, from every account
    sequences = {tuple(e["prompt"] for e in a[:60]) for a in accounts.values()}
    assert len(sequences) == 1
    # every night every account starts within minutes of the cron time
    for day in range(4):
        starts = []
        for a in accounts.values():
            night = [_ts(e) for e in a if int((_ts(e) - START) // 86400) == day]
            if night:
                starts.append(min(night))
        assert len(starts) >= 10 and max(starts) - min(starts) < 15 * 60


def test_course_signs_up_150_in_an_hour_behind_the_campus_nat(groups: dict) -> None:
    accounts = groups["university_course"]
    assert len(accounts) == 150
    firsts = sorted(_ts(a[0]) for a in accounts.values())
    assert firsts[-1] - firsts[0] <= 3600
    first_hour = [e for a in accounts.values() for e in a if _ts(e) <= firsts[-1] + 600]
    ips = Counter(e["ip"] for e in first_hour)
    asns = {e["asn"] for e in first_hour}
    nat = sum(n for _, n in ips.most_common(3))
    assert nat > 0.85 * len(first_hour) and len(asns) <= 2  # the NAT, and some phones
    prompts = [e["prompt"] for a in accounts.values() for e in a]
    heads = tuple(t.split("{p}")[0] for t in ASSIGNMENT_TEMPLATES)
    assert np.mean([p.startswith(heads) for p in prompts]) > 0.5


def test_course_work_bunches_up_before_deadlines(groups: dict) -> None:
    accounts = groups["university_course"]
    ts = np.sort([_ts(e) for a in accounts.values() for e in a])
    # deadlines: end of local days 1 and 3; the university's offset is 0..+1 h
    near = sum(
        ((ts > START + d * 86400 + 18 * 3600) & (ts < START + d * 86400 + 24 * 3600)).sum()
        for d in (1, 3)
    )
    far = sum(
        ((ts > START + d * 86400 + 18 * 3600) & (ts < START + d * 86400 + 24 * 3600)).sum()
        for d in (0, 2)
    )
    assert near > 2 * far
    times = [np.asarray([_ts(e) for e in a]) for a in accounts.values()]
    assert traces.coactivity_ratio(times, START, 4, bin_s=600) > 1.5  # synchronised, honestly


def test_hackathon_starts_together_on_one_network_with_the_starter_kit(groups: dict) -> None:
    accounts = groups["hackathon"]
    assert len(accounts) == 36
    firsts = sorted(_ts(a[0]) for a in accounts.values())
    assert firsts[-1] - firsts[0] <= 30 * 60
    kit = [e for a in accounts.values() for e in a if e.get("system_prompt") == KIT_SYSTEM_PROMPT]
    assert len(kit) > 0.6 * sum(len(a) for a in accounts.values())
    assert {e["user_agent"] for e in kit} == {KIT_USER_AGENT}
    assert all(e["prompt"].startswith("[starter-kit]") for e in kit)
    venue = Counter(e["asn"] for e in kit).most_common(1)[0]
    assert venue[1] > 0.7 * len(kit)  # the conference network, phones for the rest
    cards = Counter(a[0]["payment_fingerprint"] for a in accounts.values())
    assert len(cards) == 9 and set(cards.values()) == {4}  # teams of four share a card


def test_households_are_one_org_one_card_one_home(groups: dict) -> None:
    by_org: dict[str, set[str]] = defaultdict(set)
    for acct, evs in groups["household"].items():
        assert len({e["org_id"] for e in evs}) == 1
        by_org[evs[0]["org_id"]].add(acct)
        homes = {(e["payment_fingerprint"], e["ip"]) for e in evs}
        assert len(homes) == 1
    sizes = [len(v) for v in by_org.values()]
    assert len(by_org) >= 3 and max(sizes) <= 5
    for members in by_org.values():
        seen = {
            (e["payment_fingerprint"], e["ip"]) for m in members for e in groups["household"][m]
        }
        assert len(seen) == 1
