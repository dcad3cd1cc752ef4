"""The simulator's output checked against its scenario: volumes, rhythms, sharing, truth."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import orjson
import pytest

from distillguard.events import EventDecoder
from distillguard.sim.engine import Traffic, generate, write_files
from distillguard.sim.scenario import load_scenario
from distillguard.sim.text import hamming, simhash64

HOUR = 3600.0

TINY = """
name: tiny
seed: 11
start: "2026-11-16T00:00:00Z"
days: 1
models:
  - {name: m-pro, role: flagship}
  - {name: m-mini, role: mini}
  - {name: m-next, role: release, released_at_hour: 12}
benign:
  hobbyist: {accounts: 12}
  campus_nat: {accounts: 6}
  corporate_nat: {accounts: 4}
  chat_backend: {accounts: 1, daily_requests: 300}
  coding_assistant: {accounts: 3}
  enterprise_batch: {accounts: 1, daily_requests: 400}
  eval_runner: {accounts: 1, run_max: 300}
  research_group: {accounts: 2}
  agent_product: {accounts: 1, daily_requests: 200}
campaigns:
  - {id: bulk, archetype: bulk_distiller, accounts: 1, daily_requests: 1500}
  - {id: lp, archetype: logprob_harvester, accounts: 1, daily_requests: 300}
  - {id: hy, archetype: hydra, accounts: 10, redacted: true}
  - {id: slow, archetype: low_and_slow, accounts: 2}
  - {id: piv, archetype: release_pivot, accounts: 2, per_account_daily: 200}
"""


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scen") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def small_traffic() -> Traffic:
    """The shipped ``small`` scenario, generated once for the module."""
    return generate(load_scenario("small"))


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory, small_traffic: Traffic
) -> tuple[list[dict], dict[str, dict]]:
    """The shipped ``small`` scenario as written to files, read back."""
    out = tmp_path_factory.mktemp("small")
    write_files(small_traffic, out / "events.jsonl", out / "labels.jsonl")
    labels = {r["account_id"]: r for r in _read(out / "labels.jsonl")}
    return _read(out / "events.jsonl"), labels


def _by_account(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        out[e["account_id"]].append(e)
    return out


def _ts(e: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()


def test_same_seed_same_bytes_and_other_seed_differs(tiny_file: Path, tmp_path: Path) -> None:
    paths = []
    for run, seed in enumerate((None, None, 5)):
        ev, lab = tmp_path / f"e{run}.jsonl", tmp_path / f"l{run}.jsonl"
        write_files(generate(load_scenario(str(tiny_file), seed=seed)), ev, lab)
        paths.append((ev.read_bytes(), lab.read_bytes()))
    assert paths[0] == paths[1]
    assert paths[0][0] != paths[2][0]


def test_every_event_decodes_is_time_ordered_and_labelled(small: tuple) -> None:
    events, labels = small
    dec = EventDecoder()
    ts = [dec.decode(orjson.dumps(e)).ts for e in events]
    assert ts == sorted(ts)
    assert len({e["event_id"] for e in events}) == len(events)
    assert {e["account_id"] for e in events} == set(labels)
    assert 50_000 <= len(events) <= 150_000


def test_small_covers_every_archetype_and_the_issue_minimums(small: tuple) -> None:
    from distillguard.sim.attackers import ATTACKERS
    from distillguard.sim.benign import BENIGN

    _, labels = small
    archetypes = Counter(r["archetype"] for r in labels.values())
    assert set(archetypes) == set(BENIGN) | set(ATTACKERS)
    assert sum(1 for r in labels.values() if r["label"] == "benign") >= 200
    campaigns = Counter(r["campaign"] for r in labels.values() if r["archetype"] == "hydra")
    assert max(campaigns.values()) >= 10
    for r in labels.values():
        assert (r["label"] == "distiller") == (r["campaign"] is not None)


def test_volumes_follow_the_scenario(small: tuple) -> None:
    events, labels = small
    scenario = load_scenario("small")
    per_acct = Counter(e["account_id"] for e in events)
    days = scenario.days
    by_arch: dict[str, list[int]] = defaultdict(list)
    for acct, n in per_acct.items():
        by_arch[labels[acct]["archetype"]].append(n)
    camp = {c.id: c for c in scenario.campaigns}
    bulk = by_arch["bulk_distiller"][0]
    # Regular arrivals at daily_requests/day, plus ~3% retries after 429s.
    assert bulk == pytest.approx(camp["bulk-1"].params["daily_requests"] * days * 1.03, rel=0.05)
    batch = scenario.benign["enterprise_batch"]["daily_requests"]
    assert np.median(by_arch["enterprise_batch"]) / days == pytest.approx(batch, rel=0.6)
    # Hydra accounts are each below the benign median: quiet one by one.
    benign_median = np.median([n for a, n in per_acct.items() if labels[a]["label"] == "benign"])
    assert max(by_arch["hydra"]) < benign_median
    assert np.median(by_arch["chat_backend"]) > 20 * np.median(by_arch["hobbyist"])


def test_rhythms(small: tuple) -> None:
    from distillguard.sim.network import TZ_BY_COUNTRY

    events, labels = small
    hours: dict[str, Counter[int]] = defaultdict(Counter)  # UTC hour of day
    local: dict[str, Counter[int]] = defaultdict(Counter)  # at the client's address
    for e in events:
        arch = labels[e["account_id"]]["archetype"]
        hours[arch][int(_ts(e) // HOUR) % 24] += 1
        local[arch][int(_ts(e) // HOUR + TZ_BY_COUNTRY[e["country"]]) % 24] += 1
    flat = np.asarray([hours["bulk_distiller"][h] for h in range(24)], dtype=float)
    assert flat.max() / flat.min() < 1.3  # 24/7 at a constant rate
    batch = hours["enterprise_batch"]
    assert len([h for h, n in batch.items() if n > 0]) <= 2 * 4  # nightly windows only
    hobby = np.asarray([hours["hobbyist"][h] for h in range(24)], dtype=float)
    assert hobby.max() / max(hobby.min(), 1) > 3  # people sleep
    # Coding assistants work office hours (local time), hobbyists peak in the evening.
    coding = local["coding_assistant"]
    assert sum(coding[h] for h in range(8, 19)) / coding.total() > 0.8
    evening = local["hobbyist"]
    assert sum(evening[h] for h in range(17, 24)) > 2 * sum(evening[h] for h in range(0, 7))


def test_hydra_shares_infrastructure_as_configured(small: tuple) -> None:
    events, labels = small
    accts = _by_account(events)
    shared = [a for a, r in labels.items() if r["campaign"] == "hydra-1"]
    loose = [a for a, r in labels.items() if r["campaign"] == "hydra-2"]
    pay1 = {accts[a][0]["payment_fingerprint"] for a in shared}
    assert len(pay1) <= len(shared) // 12 + 1
    evs1 = [e for a in shared for e in accts[a]]
    assert len({e["user_agent"] for e in evs1}) == 1
    assert len({e["asn"] for e in evs1}) <= 3  # one proxy pool
    ips_by_acct = [{e["ip"] for e in accts[a]} for a in shared]
    assert len(set.union(*ips_by_acct)) <= 40
    # Synchronised: every request falls in a burst window (start every 4 h, 20 min long).
    minutes = sorted({int(_ts(e) // 60) for e in evs1})
    assert len(minutes) < 0.25 * len(evs1) + 20 * 2 * 6 * 2
    # hydra-2 shares payment and templates but not addresses; its prompts are redacted.
    evs2 = [e for a in loose for e in accts[a]]
    assert len({accts[a][0]["ip"] for a in loose}) == len(loose)
    assert all("prompt" not in e and len(e["prompt_fingerprint"]) == 16 for e in evs2)
    assert len({accts[a][0]["payment_fingerprint"] for a in loose}) == 1


def test_nat_accounts_share_a_few_addresses(small: tuple) -> None:
    events, labels = small
    campus = [e for e in events if labels[e["account_id"]]["archetype"] == "campus_nat"]
    assert len({e["account_id"] for e in campus}) >= 20
    assert len({e["ip"] for e in campus}) <= 3
    assert len({e["asn"] for e in campus}) == 1


def test_parameters_and_tokens_match_each_archetype(small: tuple) -> None:
    events, labels = small
    arch = defaultdict(list)
    for e in events:
        arch[labels[e["account_id"]]["archetype"]].append(e)
    assert all(e.get("temperature") == 0.0 for e in arch["enterprise_batch"])
    assert all(e.get("temperature") == 0.0 for e in arch["eval_runner"])
    assert all(e.get("logprobs") and e["top_logprobs"] >= 10 for e in arch["logprob_harvester"])
    assert np.mean([e.get("tool_count", 0) for e in arch["agent_product"]]) >= 12
    assert np.mean([e.get("tool_count", 0) for e in arch["coding_assistant"]]) >= 4
    assert np.mean([e.get("n", 1) > 1 for e in arch["research_group"]]) > 0.2
    assert any(e["status"] == 429 for e in arch["bulk_distiller"])
    for e in events:
        if "prompt" in e:
            text = e["prompt"] + e.get("system_prompt", "")
            assert e["input_tokens"] >= math.ceil(len(text) / 4)
        if e["status"] == 200 and e.get("max_tokens"):
            assert e["output_tokens"] <= e["max_tokens"]
    # Reasoning elicitation makes distillers' answers long compared with hobbyists'.
    out = {
        a: np.median([e["output_tokens"] for e in arch[a]]) for a in ("bulk_distiller", "hobbyist")
    }
    assert out["bulk_distiller"] > 2 * out["hobbyist"]


def test_prompt_sources(small_traffic: Traffic) -> None:
    """Distillers draw from machine-generated sets, benign accounts never do."""
    ctx = small_traffic.ctx
    text = small_traffic.columns["text"]
    arch = np.asarray([a.archetype for a in small_traffic.accounts])[small_traffic.acct]
    label = np.asarray([a.label for a in small_traffic.accounts])[small_traffic.acct]

    def within(corpora: tuple[str, ...]) -> np.ndarray:
        return np.logical_or.reduce(
            [(text >= ctx.ranges[c][0]) & (text < ctx.ranges[c][1]) for c in corpora]
        )

    machine = within(("codegen", "toolformer"))
    assert not machine[label == "benign"].any()
    assert machine[arch == "bulk_distiller"].all()
    assert within(("gsm8k",))[arch == "eval_runner"].all()
    hydra = arch == "hydra"
    assert 0.1 < within(("nq",))[hydra].mean() < 0.45  # mundane prompts mixed in
    assert within(("self_instruct",))[label == "benign"].mean() > 0.05


def test_release_pivot_moves_within_hours(small: tuple) -> None:
    events, labels = small
    scenario = load_scenario("small")
    idx, release = scenario.release()  # type: ignore[misc]
    new_model = scenario.models[idx].name
    assert all(_ts(e) >= release for e in events if e["model"] == new_model)
    after = release + 4 * HOUR

    def share(kind: str) -> float:
        evs = [
            e for e in events if labels[e["account_id"]]["archetype"] == kind and _ts(e) >= after
        ]
        return float(np.mean([e["model"] == new_model for e in evs]))

    assert share("release_pivot") > 0.75
    assert share("hobbyist") < 0.5


def test_simhash_keeps_templates_close() -> None:
    a = simhash64("Task: write a C++ program that adds two numbers\n\nThink step by step.")
    b = simhash64("Task: write a C++ program that multiplies two numbers\n\nThink step by step.")
    c = simhash64("Who won the world cup in 1998?")
    assert hamming(a, b) < hamming(a, c)
    assert simhash64("Hello World") == simhash64("hello, world!")


def test_scenario_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("hobbyist: {accounts: 12}", "hobbyist: {accounts: 12, volum: 3}"))
    with pytest.raises(ValueError, match="unknown parameters"):
        load_scenario(str(bad))
    with pytest.raises(FileNotFoundError, match=r"known: .*small"):
        load_scenario("no-such-scenario")


@pytest.mark.slow
def test_default_scenario_meets_the_issue_minimums() -> None:
    """>= 2,000 benign accounts, >= 6 campaigns, >= 3 days, >= 1M events (columns only)."""
    scenario = load_scenario("default")
    assert scenario.days >= 3 and len(scenario.campaigns) >= 6
    traffic = generate(scenario)
    assert traffic.events >= 1_000_000
    per_account = np.bincount(traffic.acct, minlength=len(traffic.accounts))
    label = np.asarray([a.label for a in traffic.accounts])
    arch = np.asarray([a.archetype for a in traffic.accounts])
    assert (label == "benign").sum() >= 2000
    assert per_account[arch == "hydra"].max() < np.median(per_account[label == "benign"])
