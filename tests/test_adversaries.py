"""The adversary lab: each variant really dodges what it claims, and really leaves its trace.

One small scenario holds every variant and the background they hide in. Traces are
checked the way docs/adversaries.md states them, with ``sim/traces.py``, against
honest accounts of comparable volume: a trace that does not separate them would make
the robustness matrix meaningless; one read off a constant field would make it trivial.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from distillguard.sim import traces
from distillguard.sim.adversaries import ADVERSARIES, FAMILY, HARNESS_TEMPLATES
from distillguard.sim.attackers import ATTACKERS
from distillguard.sim.engine import Traffic, generate, write_files
from distillguard.sim.network import SCRIPT_USER_AGENTS
from distillguard.sim.scenario import load_scenario
from distillguard.sim.tactics import DOCUMENTED_PHRASES, FREE_REASONING, OPENERS, PLAIN_CLOSERS

DAY = 86_400.0

LAB = """
name: lab
seed: 17
start: "2026-11-16T00:00:00Z"
days: 3
models:
  - {name: m-pro, role: flagship}
  - {name: m-mini, role: mini}
  - {name: m-next, role: release, released_at_hour: 20}
benign:
  hobbyist: {accounts: 400}
  coding_assistant: {accounts: 12}
  eval_runner: {accounts: 3, run_max: 400}
campaigns:
  - {id: resi, archetype: residential_fleet, accounts: 30}
  - {id: ff, archetype: free_form_hydra, accounts: 30}
  - {id: mimic, archetype: eval_mimic, accounts: 4, run_min: 100, run_max: 300}
  - {id: warm, archetype: warmup_harvester, accounts: 8, stagger_days: 0.5,
     go_after_days: 1.5, harvest_daily: 150}
  - {id: pivot, archetype: patient_pivot, accounts: 4, adopt_after_h: [10, 20]}
  - {id: careful, archetype: careful_single, accounts: 3}
  - {id: swarm, archetype: swarm, accounts: 300}
  - {id: stealth, archetype: stealth_fleet, accounts: 30, stagger_days: 0.5,
     warmup_min_days: 1.0, warmup_max_days: 1.2}
  - {id: rec, archetype: recorded_timing, accounts: 20}
"""


class View:
    """Per-account columns of a generated scenario, by archetype."""

    def __init__(self, traffic: Traffic) -> None:
        self.t = traffic
        self.ctx = traffic.ctx
        order = np.argsort(traffic.acct, kind="stable")
        bounds = np.searchsorted(traffic.acct[order], np.arange(len(traffic.accounts) + 1))
        self._rows = [order[bounds[i] : bounds[i + 1]] for i in range(len(traffic.accounts))]
        self.by_arch: dict[str, list[int]] = defaultdict(list)
        for i, a in enumerate(traffic.accounts):
            self.by_arch[a.archetype].append(i)

    def col(self, name: str, i: int) -> np.ndarray:
        return self.t.columns[name][self._rows[i]]

    def times(self, arch: str) -> list[np.ndarray]:
        return [self.col("ts", i) for i in self.by_arch[arch]]

    def machine(self, i: int) -> np.ndarray:
        """Mask of the account's prompts drawn from the machine-generated instruction sets."""
        text = self.col("text", i)
        mask = np.zeros(len(text), dtype=bool)
        for name in ("codegen", "toolformer"):
            lo, hi = self.ctx.ranges[name]
            mask |= (text >= lo) & (text < hi)
        return mask

    def matched_background(self, arch: str) -> list[int]:
        """Background (hobbyist / coding) accounts closest in volume, as many as ``arch`` has."""
        want = np.median([len(self._rows[i]) for i in self.by_arch[arch]])
        pool = self.by_arch["hobbyist"] + self.by_arch["coding_assistant"]
        pool.sort(key=lambda i: (abs(len(self._rows[i]) - want), i))
        return pool[: len(self.by_arch[arch])]


@pytest.fixture(scope="module")
def lab_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab.yaml"
    path.write_text(LAB)
    return path


@pytest.fixture(scope="module")
def lab(lab_path: Path) -> View:
    return View(generate(load_scenario(str(lab_path))))


def test_every_attacker_archetype_has_exactly_one_family_in_the_protocol() -> None:
    from distillguard.evaluation.protocol import load_protocol

    proto = load_protocol()
    listed = [v for vs in proto.families.values() for v in vs]
    assert sorted(listed) == sorted(set(ATTACKERS) | set(ADVERSARIES))
    assert {v: f for v, f in proto.family_of().items() if v in ADVERSARIES} == FAMILY
    # families without any variant, or folds that hold nothing out, would report nothing
    assert all(proto.families[f] for fold in proto.folds for f in fold.heldout_families)


def test_same_seed_same_bytes_other_seed_differs(lab_path: Path, tmp_path: Path) -> None:
    files = []
    for run, seed in enumerate((None, None, 18)):
        ev, lab = tmp_path / f"e{run}.jsonl", tmp_path / f"l{run}.jsonl"
        write_files(generate(load_scenario(str(lab_path), seed=seed, scale=0.3)), ev, lab)
        files.append((ev.read_bytes(), lab.read_bytes()))
    assert files[0] == files[1]
    assert files[0][0] != files[2][0]


# -- the dodges are real -------------------------------------------------------------------


def test_free_wording_avoids_every_documented_phrase() -> None:
    for text in FREE_REASONING + PLAIN_CLOSERS + OPENERS:
        low = text.lower()
        assert not [p for p in DOCUMENTED_PHRASES if p in low], text
    assert len(set(FREE_REASONING)) >= 40


def _head_repeat_rate(prompts: list[str]) -> float:
    """Share of prompts whose 32-char head or tail matches one of the previous 4 (the
    template_repeat_rate of docs/detectors.md, recomputed here)."""
    hits, recent = 0, list[tuple[str, str]]()
    for p in prompts:
        key = (p[:32].lower(), p[-32:].lower())
        hits += any(key[0] == r[0] or key[1] == r[1] for r in recent)
        recent = [*recent[-3:], key]
    return hits / max(1, len(prompts))


def _prompts(lab: View, i: int) -> list[str]:
    pre_suf = lab.ctx.wraps.items
    return [
        pre_suf[w][0] + lab.ctx.texts[t] + pre_suf[w][1]
        for t, w in zip(lab.col("text", i).tolist(), lab.col("wrap", i).tolist(), strict=True)
    ]


def test_no_fixed_template_where_the_variant_claims_none(lab: View) -> None:
    def rate(arch: str) -> float:
        return float(np.median([_head_repeat_rate(_prompts(lab, i)) for i in lab.by_arch[arch]]))

    for arch in ("free_form_hydra", "swarm", "stealth_fleet", "careful_single", "recorded_timing"):
        assert rate(arch) < 0.2, arch
    # the infrastructure-only variant keeps its campaign template: the contrast is real
    assert rate("residential_fleet") > 0.5


def test_one_sticky_home_each_inside_one_large_isp(lab: View) -> None:
    asns = lab.ctx.book.asns
    hobby_asns = [asns[int(lab.col("ip", i)[0])] for i in lab.by_arch["hobbyist"]]
    for arch in ("residential_fleet", "stealth_fleet", "recorded_timing"):
        idx = lab.by_arch[arch]
        ips = [set(lab.col("ip", i).tolist()) for i in idx]
        assert all(len(s) == 1 for s in ips), arch
        assert {asns[next(iter(s))] for s in ips} == {7922}
        assert len({next(iter(s)) for s in ips}) == len(idx)  # no shared address
        assert len({lab.t.accounts[i].payment for i in idx}) == len(idx)  # a card each
        firsts = [lab.col("ts", i)[0] for i in idx]
        assert max(firsts) - min(firsts) > 0.4 * DAY  # staggered starts
    # the ISP is one honest users share by the hundred: an ASN link there is worthless
    assert hobby_asns.count(7922) / len(hobby_asns) > 0.03


def test_vendor_sdk_clients_no_scripted_user_agents(lab: View) -> None:
    uas = lab.ctx.uas.items
    for arch in (
        "residential_fleet",
        "stealth_fleet",
        "swarm",
        "careful_single",
        "patient_pivot",
        "recorded_timing",
    ):
        agents = {str(uas[u]) for i in lab.by_arch[arch] for u in set(lab.col("ua", i).tolist())}
        assert not any(s.split("/")[0] in a for a in agents for s in SCRIPT_USER_AGENTS), arch


def test_swarm_accounts_each_stay_within_a_daily_quota(lab: View) -> None:
    firsts = []
    for ts in lab.times("swarm"):
        counts = traces.daily_counts(ts, lab.ctx.start, 3)
        first = int(np.argmax(counts > 0))
        assert ((counts[first:] >= 3) & (counts[first:] <= 10)).all(), counts
        firsts.append(first)
    assert set(firsts) == {0, 1}  # activated on different days


def test_shipped_swarm_has_2000_accounts_at_3_to_10_a_day() -> None:
    spec = load_scenario("swarm")
    assert spec.days >= 2
    spec = spec.without(set(spec.benign))  # the swarm alone: faster, same accounts
    view = View(generate(spec))
    swarm = view.times("swarm")
    assert len(swarm) >= 2000
    days = int(spec.days)
    for ts in swarm:
        counts = traces.daily_counts(ts, spec.start, days)
        active = counts[int(np.argmax(counts > 0)) :]
        assert len(active) >= 2 and active.min() >= 3 and active.max() <= 10


def test_eval_mimic_looks_like_a_harness(lab: View) -> None:
    for i in lab.by_arch["eval_mimic"]:
        assert np.all(lab.col("temperature", i) == 0.0)
        gaps = np.diff(lab.col("ts", i))
        assert np.median(gaps) < 2.0  # runs are bursts, like a harness's
    wraps = {
        lab.ctx.wraps.items[w][0] for i in lab.by_arch["eval_mimic"] for w in lab.col("wrap", i)
    }
    assert wraps <= {t.split("{p}")[0] for t in HARNESS_TEMPLATES}


def _release(lab: View) -> tuple[int, float]:
    assert lab.ctx.release is not None
    return lab.ctx.release


def test_patient_pivot_adopts_like_an_honest_user(lab: View) -> None:
    rel_idx, rel_ts = _release(lab)
    for i in lab.by_arch["patient_pivot"]:
        ts, model = lab.col("ts", i), lab.col("model", i)
        first = ts[model == rel_idx].min()
        assert first - rel_ts >= 9 * 3600  # no rush within hours of the release
        share = np.mean(model[ts >= first] == rel_idx)
        assert 0.4 < share < 0.8  # part of its traffic, as honest adopters move


def test_careful_single_passes_for_a_heavy_human_user(lab: View) -> None:
    for i in lab.by_arch["careful_single"]:
        ts = lab.col("ts", i)
        assert np.mean(lab.col("stream", i) == 1) > 0.5 or np.all(lab.col("stream", i) == 1)
        gaps = np.diff(ts)
        assert np.median(gaps[gaps < 600]) > 20  # think time within sessions
        assert np.mean(lab.machine(i)) < 0.5  # most prompts are ordinary questions


# -- the traces are real ---------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["residential_fleet", "free_form_hydra", "stealth_fleet", "swarm"])
def test_controller_clock_synchronises_the_fleet_beyond_chance(lab: View, arch: str) -> None:
    """A fleet's requests bunch into the same minutes more than comparable honest
    accounts', once each account's own time-of-day rhythm is accounted for."""
    start, days = lab.ctx.start, lab.ctx.scenario.days
    fleet = traces.coactivity_ratio(lab.times(arch), start, days, bin_s=120)
    control = [lab.col("ts", i) for i in lab.matched_background(arch)]
    honest = traces.coactivity_ratio(control, start, days, bin_s=120)
    assert 0.75 < honest < 1.3, honest
    assert fleet > 1.8 and fleet > honest + 0.7, (fleet, honest)


def test_swarm_synchrony_is_invisible_per_pair(lab: View) -> None:
    """Not trivial: two swarm accounts rarely share a minute; only the group does."""
    times = lab.times("swarm")
    shared = [
        len(set((times[a] // 120).astype(int)) & set((times[a + 1] // 120).astype(int)))
        for a in range(0, 100, 2)
    ]
    assert np.mean(shared) < 1.5


@pytest.mark.parametrize(
    "arch",
    [
        "residential_fleet",
        "free_form_hydra",
        "eval_mimic",
        "swarm",
        "stealth_fleet",
        "warmup_harvester",
        "recorded_timing",
    ],
)
def test_one_content_source_no_item_sent_twice(lab: View, arch: str) -> None:
    """One dispatcher's sweep: the campaign never collides on an instruction-set item,
    where accounts drawing independently from the same rows would."""
    idx = lab.by_arch[arch]
    items = [lab.col("text", i)[lab.machine(i)] for i in idx]
    pool = sum(
        hi - lo for name, (lo, hi) in lab.ctx.ranges.items() if name in ("codegen", "toolformer")
    )
    assert sum(len(x) for x in items) < pool  # within one sweep in this scenario
    assert traces.cross_account_collisions(items) == 0
    assert traces.expected_collisions([len(x) for x in items], pool) > 3


@pytest.mark.parametrize("arch", ["warmup_harvester", "stealth_fleet"])
def test_change_of_regime_after_a_day_of_warm_up(lab: View, arch: str) -> None:
    """Per account the content changes (no instruction-set item before ``harvest_start``,
    mostly such items after) and answers lengthen; the rate jumps for the campaign (a
    fleet's per-account harvest varies, so not every account outpaces its warm-up)."""
    rates = []
    for i in lab.by_arch[arch]:
        acct = lab.t.accounts[i]
        ts = lab.col("ts", i)
        assert acct.harvest_start is not None
        assert acct.harvest_start - ts[0] >= DAY  # posed as a user for a day or more
        before, after = ts < acct.harvest_start, ts >= acct.harvest_start
        machine = lab.machine(i)
        assert not machine[before].any()  # the warm-up is a person's traffic
        assert machine[after].mean() > 0.5
        out = lab.col("out_tok", i).astype(float)
        assert traces.shift_ratio(out, ts, acct.harvest_start) > 1.2
        rate_before = before.sum() / ((acct.harvest_start - ts[0]) / DAY)
        rates.append(after.sum() / max(0.5, (lab.ctx.end - acct.harvest_start) / DAY) / rate_before)
    assert np.median(rates) > 2
    # honest accounts do not change like that
    hobby = [i for i in lab.by_arch["hobbyist"] if len(lab.col("ts", i)) >= 10][:50]
    mid = lab.ctx.start + 1.5 * DAY
    ratios = [
        traces.shift_ratio(lab.col("out_tok", i).astype(float), lab.col("ts", i), mid)
        for i in hobby
    ]
    assert np.nanmedian(ratios) < 1.2


def test_warmup_switches_happen_within_hours_of_each_other(lab: View) -> None:
    starts = [lab.t.accounts[i].harvest_start for i in lab.by_arch["warmup_harvester"]]
    assert traces.spread_hours([s for s in starts if s is not None]) < 4.0
    assert None not in starts


def test_eval_mimic_never_reruns_its_benchmark_and_answers_long(lab: View) -> None:
    def runs(i: int) -> int:
        return 1 + int((np.diff(lab.col("ts", i)) > 3600).sum())

    def shares(arch: str) -> list[float]:
        return [traces.repeat_share(lab.col("text", i)) for i in lab.by_arch[arch] if runs(i) > 1]

    mimic, honest = shares("eval_mimic"), shares("eval_runner")
    assert mimic and honest  # accounts with several runs on both sides
    assert max(mimic) < 0.02 and min(honest) > 0.3
    out_m = np.mean([lab.col("out_tok", i).mean() for i in lab.by_arch["eval_mimic"]])
    out_h = np.mean([lab.col("out_tok", i).mean() for i in lab.by_arch["eval_runner"]])
    assert out_m > 1.5 * out_h


def test_patient_pivot_accounts_adopt_together(lab: View) -> None:
    rel_idx, _ = _release(lab)
    first = [
        lab.col("ts", i)[lab.col("model", i) == rel_idx].min() for i in lab.by_arch["patient_pivot"]
    ]
    honest = [
        lab.col("ts", i)[lab.col("model", i) == rel_idx].min()
        for i in lab.by_arch["hobbyist"] + lab.by_arch["coding_assistant"]
        if (lab.col("model", i) == rel_idx).any()
    ]
    assert len(honest) >= 10
    assert traces.spread_hours(first) < 1.0 < 5.0 < traces.spread_hours(honest)


def test_recorded_timing_passes_for_people_one_by_one_and_together(lab: View) -> None:
    """Each account has a person's think time, hours and home address; the fleet is not
    active together (co-activity as for independent people) and shares no card."""
    idx = lab.by_arch["recorded_timing"]
    for i in idx:
        gaps = np.diff(lab.col("ts", i))
        assert np.median(gaps[gaps < 600]) > 20  # think time
        assert np.std(np.log(gaps[gaps > 2])) > 0.8  # not a metronome
        assert len(set(lab.col("ip", i).tolist())) == 1
    assert len({lab.t.accounts[i].payment for i in idx}) == len(idx)
    start, days = lab.ctx.start, lab.ctx.scenario.days
    fleet = traces.coactivity_ratio(lab.times("recorded_timing"), start, days, bin_s=120)
    assert 0.6 < fleet < 1.4, fleet


def test_recorded_timing_shares_runs_of_gaps_that_people_never_do(lab: View) -> None:
    """The trace: runs of four consecutive gaps recur across the fleet's accounts;
    volume-matched people of the background share next to none."""

    def mean_shared(idx: list[int]) -> float:
        runs = [traces.gap_runs(lab.col("ts", i)) for i in idx]
        pairs = [(a, b) for a in range(len(runs)) for b in range(a + 1, len(runs))]
        return float(np.mean([len(runs[a] & runs[b]) for a, b in pairs]))

    fleet = mean_shared(lab.by_arch["recorded_timing"])
    people = mean_shared(lab.matched_background("recorded_timing"))
    assert fleet > 5.0 and people < 0.2, (fleet, people)


def test_careful_single_keeps_a_daily_quota(lab: View) -> None:
    start = lab.ctx.start
    careful = [traces.daily_cv(lab.col("ts", i), start, 3) for i in lab.by_arch["careful_single"]]
    coding = [traces.daily_cv(lab.col("ts", i), start, 3) for i in lab.by_arch["coding_assistant"]]
    assert max(careful) < 0.1 < 0.2 < float(np.nanmedian(coding))


# -- camouflage (configs/scenarios/camouflage*.yaml) ---------------------------------------


def _camouflaged(lab_path: Path, tmp_path: Path, **shares: float) -> Traffic:
    text = lab_path.read_text()
    extra = ", ".join(f"{k}: {v}" for k, v in shares.items())
    for line in ("{id: resi, archetype: residential_fleet, accounts: 30",
                 "{id: swarm, archetype: swarm, accounts: 300"):  # fmt: skip
        assert line in text
        text = text.replace(line, f"{line}, {extra}")
    path = tmp_path / "camouflaged.yaml"
    path.write_text(text)
    return generate(load_scenario(str(path)))


def test_borrowed_cards_and_exits_are_honest_customers_and_change_nothing_else(
    lab: View, lab_path: Path, tmp_path: Path
) -> None:
    cam = View(_camouflaged(lab_path, tmp_path, borrowed_home_share=0.5, borrowed_card_share=0.5))
    honest = [a for a in cam.t.accounts if a.label == "benign"]
    honest_cards = {a.payment for a in honest}
    honest_ips = {int(ip) for i, a in enumerate(cam.t.accounts) if a.label == "benign"
                  for ip in np.unique(cam.col("ip", i))}  # fmt: skip
    for arch in ("residential_fleet", "swarm"):
        ids = cam.by_arch[arch]
        carded = np.mean([cam.t.accounts[i].payment in honest_cards for i in ids])
        borrowed = np.mean([int(cam.col("ip", i)[0]) in honest_ips for i in ids])
        assert 0.35 < carded < 0.65 and 0.35 < borrowed < 0.65, (arch, carded, borrowed)
        # timing and content are the campaign's own: the same requests as without camouflage
        assert [len(cam.col("ts", i)) for i in ids] == [
            len(lab.col("ts", i)) for i in lab.by_arch[arch]
        ]
    # everyone else is generated exactly as before
    for arch in ("hobbyist", "free_form_hydra", "stealth_fleet"):
        for i, j in zip(cam.by_arch[arch], lab.by_arch[arch], strict=True):
            assert np.array_equal(cam.col("ts", i), lab.col("ts", j))
            assert cam.t.accounts[i].payment == lab.t.accounts[j].payment


def test_zero_camouflage_shares_generate_the_documented_scenario(
    lab: View, lab_path: Path, tmp_path: Path
) -> None:
    same = _camouflaged(lab_path, tmp_path, borrowed_home_share=0.0, borrowed_card_share=0.0)
    assert np.array_equal(same.columns["ts"], lab.t.columns["ts"])
    assert np.array_equal(same.columns["ip"], lab.t.columns["ip"])
    assert [a.payment for a in same.accounts] == [a.payment for a in lab.t.accounts]


def test_without_honest_customers_there_is_nothing_to_borrow(tmp_path: Path) -> None:
    # a campaign generated after another must not take the first one's cards for honest
    path = tmp_path / "no_benign.yaml"
    path.write_text(
        'name: nb\nseed: 5\nstart: "2026-11-16T00:00:00Z"\ndays: 2\n'
        "models: [{name: m, role: flagship}]\n"
        "campaigns:\n"
        "  - {id: a, archetype: swarm, accounts: 20}\n"
        "  - {id: b, archetype: swarm, accounts: 20, borrowed_card_share: 1.0}\n"
    )
    traffic = generate(load_scenario(str(path)))
    cards = [a.payment for a in traffic.accounts]
    assert len(set(cards)) == len(cards)
