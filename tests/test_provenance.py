"""Content provenance: item keys survive rewording, and a dispatcher's sweep is told apart.

Real rows of the shared corpora, wrapped the way the simulator's adversaries word them
(``sim/tactics.py``: openers, free reasoning requests before or after the item, plain
closers, bare items; the classic campaign templates), and three groups of twenty
accounts drawing on one source: one dispatcher's sweep, twenty independent users, an
evaluation vendor re-running one benchmark.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from distillguard.detectors.linkage.config import LinkageConfig
from distillguard.detectors.linkage.provenance import ItemKeyer, ProvenanceSketch
from distillguard.detectors.linkage.stage import LinkageStage
from distillguard.events import RequestEvent
from distillguard.sim.attackers import TEMPLATES
from distillguard.sim.corpus import load_corpora
from distillguard.sim.tactics import Wording

GROUP = 20


class _Wraps:
    """The part of the simulator's Context that Wording needs: interned wrappers."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = [("", "")]

    def wrap(self, template: str) -> int:
        prefix, _, suffix = template.partition("{p}")
        self.items.append((prefix, suffix))
        return len(self.items) - 1


class Wrapper:
    """Words an item afresh every time, like ``free_form_hydra``, ``swarm``, ``stealth_fleet``."""

    def __init__(self, seed: int) -> None:
        self.ctx = _Wraps()
        self.rng = np.random.default_rng(seed)
        self.wordings = [Wording(self.ctx, r) for r in ("free", "none", "mixed")]  # type: ignore[arg-type]
        self.templates = [t for t in TEMPLATES if "{p}" in t]

    def __call__(self, item: str) -> str:
        pick = int(self.rng.integers(0, 4))
        if pick == 3 and self.templates:
            template = self.templates[int(self.rng.integers(len(self.templates)))]
            prefix, _, suffix = template.partition("{p}")
        else:
            wraps, _ = self.wordings[pick].draw(self.rng, 1)
            prefix, suffix = self.ctx.items[int(wraps[0])]
        return prefix + item + suffix


@pytest.fixture(scope="module")
def corpora() -> dict[str, list[str]]:
    return {name: c.prompts for name, c in load_corpora().items()}


@pytest.fixture(scope="module")
def warmed(corpora: dict[str, list[str]]) -> tuple[bytes, list[int]]:
    """A keyer that has seen a population's worth of wrapped prompts (3,000 machine rows
    past the first 1,000), so the wrapper phrases read as boilerplate."""
    keyer, wrap, rng = ItemKeyer(), Wrapper(3), random.Random(5)
    rows = (corpora["codegen"] + corpora["toolformer"])[1000:]
    for _ in range(3000):
        keyer.key(wrap(rng.choice(rows)))
    return keyer.to_state()


def _keyer(warmed: tuple[bytes, list[int]]) -> ItemKeyer:
    keyer = ItemKeyer()
    keyer.load(*warmed)
    return keyer


def test_rewordings_of_one_item_share_a_key_and_items_do_not(corpora, warmed):
    machine = corpora["codegen"] + corpora["toolformer"]
    keyer, wrap = _keyer(warmed), Wrapper(1)
    items = machine[:300] + corpora["toolformer"][:100] + corpora["gsm8k"][:100]
    same = sum(keyer.key(wrap(it)) == keyer.key(wrap(it)) for it in items)
    keys = [keyer.key(wrap(it)) for it in items]
    distinct_items = len(set(items))
    # two independent rewordings of one item: the same key
    assert same / len(items) >= 0.8
    # different items: different keys (toolformer rows share long tool descriptions)
    assert len(set(keys)) >= 0.95 * distinct_items
    # a redaction-sized prompt has no item to key
    assert keyer.key("Thanks!") is None


def _draws(corpora: dict[str, list[str]]) -> dict[str, list[list[str]]]:
    """Prompts per account: outsiders, a sweep, independent users, an eval vendor."""
    source = corpora["codegen"][:800]
    rng = random.Random(11)
    wrap = Wrapper(2)
    out: dict[str, list[list[str]]] = {}
    out["outsider"] = [[wrap(rng.choice(source)) for _ in range(16)] for _ in range(60)]
    order = rng.sample(source, len(source))
    out["sweep"] = [[wrap(order[a + GROUP * i]) for i in range(16)] for a in range(GROUP)]
    out["independent"] = [[wrap(rng.choice(source)) for _ in range(16)] for _ in range(GROUP)]
    bench = [f"Question: {q}\nAnswer:" for q in corpora["gsm8k"][:40]]
    out["vendor"] = [bench[:16] for _ in range(GROUP)]
    return out


def test_a_sweep_scores_as_one_and_independent_users_or_a_benchmark_do_not(corpora, warmed):
    keyer, sketch = _keyer(warmed), ProvenanceSketch()
    draws = _draws(corpora)
    for t in range(16):  # everyone sends in step, all within one window
        for kind, accounts in draws.items():
            for a, prompts in enumerate(accounts):
                key = keyer.key(prompts[t])
                assert key is not None
                sketch.learn_one(f"{kind}{a}", key, 1_000.0 + 60.0 * t)
    score_min = LinkageConfig().provenance_score_min
    found = {k: sketch.group_score([f"{k}{a}" for a in range(GROUP)]) for k in draws}
    sweep, indep, vendor = found["sweep"], found["independent"], found["vendor"]
    assert sweep.score >= score_min, sweep.explanation()
    assert sweep.observed <= 0.5 * sweep.expected  # near-duplicate rows of the source share keys
    assert indep.score == 0.0 and indep.observed >= 0.5 * indep.expected, indep.explanation()
    assert vendor.score == 0.0 and vendor.observed > 10 * vendor.expected, vendor.explanation()
    assert "expected" in sweep.explanation()


def test_a_group_nobody_else_shares_items_with_is_never_a_sweep(corpora):
    """Novel prompts (or a private dataset): no outsider sends them, nothing is expected."""
    keyer, sketch = ItemKeyer(), ProvenanceSketch()
    source = corpora["codegen"][:400]
    for i, item in enumerate(source):
        sketch.learn_one(f"own{i % GROUP}", keyer.key(item) or 0, 60.0 * i)
    for i, item in enumerate(corpora["nq"][:400]):
        sketch.learn_one(f"other{i % 40}", keyer.key(item) or 0, 60.0 * i)
    found = sketch.group_score([f"own{a}" for a in range(GROUP)])
    assert found.score == 0.0 and found.expected < 1.0


def _event(i: int, acct: str, ts: float, prompt: str, **kw: object) -> RequestEvent:
    return RequestEvent(
        event_id=f"e{i}",
        ts=ts,
        account_id=acct,
        model="m",
        input_tokens=10,
        output_tokens=50,
        status=200,
        prompt=prompt,
        **kw,  # type: ignore[arg-type]
    )


def _run(corpora: dict[str, list[str]], group: str) -> LinkageStage:
    """Twenty accounts on one card and one proxy pool (coordinated) whose members' own
    behaviour looks like customers' (extraction score 0), among sixty outsiders."""
    stage = LinkageStage(LinkageConfig(), member_extraction=lambda _: 0.0)
    draws = _draws(corpora)
    i = 0
    for t in range(16):
        for a, prompts in enumerate(draws["outsider"]):
            i += 1
            stage.process(
                _event(i, f"out{a}", 1_000.0 + 60 * t + a / 100, prompts[t], ip=f"10.{a}.0.1")
            )
        for a, prompts in enumerate(draws[group]):
            i += 1
            stage.process(
                _event(
                    i,
                    f"grp{a}",
                    1_000.0 + 60 * t + 0.5 + a / 100,
                    prompts[t],
                    payment_fingerprint="card-9",
                    ip=f"198.51.{100 + a % 3}.{a + 1}",
                )
            )
    for k in range(3):  # the clock moves past the hourly rescoring of every cluster
        stage.process(_event(i + 1 + k, "out0", 5_000.0 + k, "When is the next eclipse?"))
    return stage


@pytest.fixture(scope="module")
def swept(corpora: dict[str, list[str]]) -> LinkageStage:
    return _run(corpora, "sweep")


def test_the_gate_counts_a_sweep_as_extracting_and_shows_why(corpora, swept):
    alerts = swept.drain_alerts()
    assert swept.cluster_of("grp3") is not None
    assert [len(a.members) for a in alerts] == [GROUP]
    alert = alerts[-1]
    assert "content_sweep" in [r.signal for r in alert.reasons]
    [prov] = [e for e in alert.evidence if e.kind == "provenance"]
    assert "item collisions" in prov.value and prov.weight >= LinkageConfig().provenance_score_min
    assert swept.cluster_risk("grp3") >= 0.7

    # the same coordination, members drawing on their own: coordinated, not extracting
    honest = _run(corpora, "independent")
    assert honest.cluster_of("grp3") is not None
    assert honest.drain_alerts() == [] and honest.cluster_risk("grp3") == 0.0


def test_provenance_state_survives_a_restart(swept):
    stage = swept
    restored = LinkageStage(LinkageConfig(), member_extraction=lambda _: 0.0)
    restored.restore(stage.snapshot())
    assert restored.snapshot() == stage.snapshot()
    members = [f"grp{a}" for a in range(GROUP)]
    assert restored._provenance.group_score(members) == stage._provenance.group_score(members)
    prompt = "Write a function that counts the vowels in a string, then test it."
    assert restored._keyer.key(prompt) == stage._keyer.key(prompt)
