"""The robustness matrix and the held-out protocol: figures only where they mean something.

The matrix is checked on hand-made outcomes; the protocol on its refusals (a tuning
run never reports a held-out figure, whatever its corpus split) and on a tiny protocol
of its own run end to end through ``distillguard evaluate-heldout``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.evaluation import robustness
from distillguard.evaluation.protocol import (
    Protocol,
    ProtocolError,
    Run,
    load_protocol,
    run_of_event_id,
    run_of_file,
)
from distillguard.sim.corpus import load_corpora, row_split, split_corpora
from distillguard.sim.engine import generate, run_prefix, write_files
from distillguard.sim.scenario import load_scenario

TINY = """
name: tiny
seed: 3
start: "2026-11-16T00:00:00Z"
days: 2
models:
  - {name: m-pro, role: flagship}
  - {name: m-mini, role: mini}
benign:
  hobbyist: {accounts: 40}
  company_card: {accounts: 8}
  hackathon: {accounts: 8}
campaigns:
  - {id: sw, archetype: swarm, accounts: 20}
  - {id: resi, archetype: residential_fleet, accounts: 6}
"""

PROTOCOL = """
scenario_dir: .
runs:
  tuning:
    - {scenario: tiny, seeds: [3], corpus_split: tuning}
  heldout:
    - {scenario: tiny, seeds: [4], corpus_split: heldout}
families:
  swarm: [swarm]
  infrastructure: [residential_fleet]
folds:
  - {name: without-swarm, heldout_families: [swarm]}
  - {name: without-infrastructure, heldout_families: [infrastructure]}
"""


def _said(output: str) -> str:
    """A command's message with rich's box and line wrapping taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


@pytest.fixture
def tiny_protocol(tmp_path: Path) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "protocol.yaml").write_text(PROTOCOL)
    return tmp_path / "protocol.yaml"


# -- the matrix ---------------------------------------------------------------------------


def test_matrix_counts_cluster_alerts_and_measures_from_harvest_start() -> None:
    truth = {
        "w1": SimpleNamespace(label=1, archetype="stealth_fleet", harvest_start=86_400.0),
        "w2": SimpleNamespace(label=1, archetype="stealth_fleet", harvest_start=86_400.0),
        "s1": SimpleNamespace(label=1, archetype="swarm", harvest_start=None),
        "s2": SimpleNamespace(label=1, archetype="swarm", harvest_start=None),
        "h1": SimpleNamespace(label=0, archetype="hackathon", harvest_start=None),
        "h2": SimpleNamespace(label=0, archetype="hackathon", harvest_start=None),
        "b1": SimpleNamespace(label=0, archetype="hobbyist", harvest_start=None),
    }
    # w1 alerted an hour into harvesting, w2 during its warm-up; s1 through a cluster
    # alert (it is in the alerted set like any other), h1 a false alert
    first_alert = {"w1": 90_000.0, "w2": 3_600.0, "s1": 600.0, "h1": 60.0}
    first_event = dict.fromkeys(truth, 0.0)
    out = robustness.outcomes(truth, set(first_alert), first_alert, first_event)
    m = robustness.matrix(out, {"stealth_fleet": "composite", "swarm": "swarm"}, ["hackathon"])
    stealth, swarm = m["variants"]["stealth_fleet"], m["variants"]["swarm"]
    assert (stealth["accounts"], stealth["alerted"], stealth["recall"]) == (2, 2, 1.0)
    assert stealth["median_minutes"] == pytest.approx(((90_000 - 86_400) / 60 - 1380) / 2)
    assert stealth["alerted_before_harvest"] == 1
    assert (swarm["recall"], swarm["median_minutes"], swarm["family"]) == (0.5, 10.0, "swarm")
    assert m["honest_groups"] == {"hackathon": {"accounts": 2, "alerted": 1, "share": 0.5}}
    assert m["background"] == {"accounts": 1, "alerted": 0, "share": 0.0}
    assert m["benign_fpr"] == pytest.approx(1 / 3)
    fam = robustness.by_family(m)
    assert fam["composite"]["recall"] == 1.0 and fam["swarm"]["variants"] == ["swarm"]


def test_cluster_coverage_counts_only_alerts_of_distillers_and_reads_24_hours_two_ways() -> None:
    day = 86_400.0
    truth = {
        # the campaign's first account starts at 0; s2 starts a day and a half later
        "s1": SimpleNamespace(label=1, archetype="swarm", harvest_start=None, campaign="c"),
        "s2": SimpleNamespace(label=1, archetype="swarm", harvest_start=None, campaign="c"),
        "s3": SimpleNamespace(label=1, archetype="swarm", harvest_start=None, campaign="c"),
        "s4": SimpleNamespace(label=1, archetype="swarm", harvest_start=None, campaign="c"),
        "h1": SimpleNamespace(label=0, archetype="hackathon", harvest_start=None, campaign=None),
    }
    first_event = {"s1": 0.0, "s2": 1.5 * day, "s3": 0.0, "s4": 0.0, "h1": 0.0}
    alerts = [
        (0.5 * day, ["s1", "s3", "h1"]),  # a third honest: covers no one
        (2.0 * day, ["s1", "s2"]),  # pure: s1 42 h after the campaign, s2 12 h after its start
        (2.5 * day, ["s3"]),
    ]
    first_alert = {"s1": 0.5 * day, "s2": 2.0 * day, "s3": 0.5 * day, "h1": 0.5 * day}
    out = robustness.outcomes(truth, set(first_alert), first_alert, first_event, alerts)
    assert out["s1"].cluster_hours == pytest.approx(48.0)
    assert out["s2"].cluster_hours == pytest.approx(12.0)
    assert out["s2"].campaign_cluster_hours == pytest.approx(48.0)
    assert out["s4"].cluster_hours is None and out["h1"].cluster_hours is None
    row = robustness.matrix(out, {}, ["hackathon"])["variants"]["swarm"]
    assert (row["alerted"], row["in_pure_clusters"]) == (3, 3)
    assert row["in_pure_clusters_24h"] == 1  # s2 only: s1 and s3 took two days and more
    assert row["in_pure_clusters_24h_of_campaign"] == 0


def test_pooling_keeps_runs_apart() -> None:
    a = {"x": robustness.Outcome("swarm", 1, True, 5.0)}
    b = {"x": robustness.Outcome("swarm", 1, False)}
    pooled = robustness.pool({"r1": a, "r2": b})
    assert len(pooled) == 2
    assert robustness.matrix(pooled, {}, [])["variants"]["swarm"]["recall"] == 0.5


# -- the protocol ---------------------------------------------------------------------------


def test_shipped_protocol_declares_tuning_and_heldout_runs_apart() -> None:
    proto = load_protocol()
    tuned = {(r.scenario, r.seed) for r in proto.tuning}
    held = {(r.scenario, r.seed) for r in proto.heldout}
    assert not tuned & held
    assert {"adaptive", "swarm"} <= {s for s, _ in held}
    assert all(r.corpus_split == "heldout" for r in proto.heldout)
    for run in proto.heldout:
        proto.check_heldout(run)  # no error
        load_scenario(run.scenario)  # every named scenario exists


@pytest.mark.parametrize("split", ["tuning", "heldout", "all"])
def test_a_tuning_scenario_seed_is_refused_whatever_its_rows(split: str) -> None:
    proto = load_protocol()
    with pytest.raises(ProtocolError, match="tuning run"):
        proto.check_heldout(Run("adaptive", 101, split))
    with pytest.raises(ProtocolError, match="tuning run"):
        proto.check_heldout(Run("default", 2026, split))


def test_unlisted_runs_and_tuning_rows_are_refused() -> None:
    proto = load_protocol()
    with pytest.raises(ProtocolError, match="not a held-out run"):
        proto.check_heldout(Run("adaptive", 5555, "heldout"))
    with pytest.raises(ProtocolError, match="not a held-out run"):
        proto.check_heldout(Run("adaptive", 1101, "tuning"))  # right seed, tuning rows


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seeds: [4], corpus_split: heldout", "seeds: [3], corpus_split: heldout"), "both"),
        (("seeds: [4], corpus_split: heldout", "seeds: [4], corpus_split: tuning"), "held-out"),
        (("[swarm]}", "[nonesuch]}"), "unknown"),
        (("infrastructure: [residential_fleet]", "infrastructure: [swarm]"), "families"),
    ],
)
def test_an_inconsistent_protocol_is_rejected(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "p.yaml"
    assert edit[0] in PROTOCOL
    path.write_text(PROTOCOL.replace(edit[0], edit[1], 1))
    with pytest.raises(ValueError, match=message):
        load_protocol(path)


def test_every_event_names_its_run() -> None:
    for run in (Run("adaptive", 1101, "heldout"), Run("small", 7, "all"), Run("a-b", -3, "tuning")):
        prefix = run_prefix(run.scenario, run.corpus_split, run.seed)
        assert run_of_event_id(prefix + "000000042") == run


def test_fold_tuning_view_drops_the_held_out_families(tiny_protocol: Path) -> None:
    proto: Protocol = load_protocol(tiny_protocol)
    view = proto.tuning_view(proto.folds[0])
    assert view == [
        {"scenario": "tiny", "seed": 3, "corpus_split": "tuning", "drop_archetypes": ["swarm"]}
    ]
    spec = load_scenario(proto.scenario_path("tiny"), seed=3, corpus_split="tuning")
    kept = spec.without(set(view[0]["drop_archetypes"]))
    assert {c.archetype for c in kept.campaigns} == {"residential_fleet"}


# -- the corpus split -----------------------------------------------------------------------


def test_corpus_split_is_disjoint_and_held_out_runs_use_only_held_out_rows(
    tmp_path: Path,
) -> None:
    corpora = load_corpora()
    tuning, heldout = split_corpora(corpora, "tuning"), split_corpora(corpora, "heldout")
    for name, full in corpora.items():
        t, h = set(tuning[name].prompts), set(heldout[name].prompts)
        assert not t & h and t | h == set(full.prompts)
        assert 0.4 < len(heldout[name]) / len(full) < 0.6
    (tmp_path / "tiny.yaml").write_text(TINY)
    events = tmp_path / "e.jsonl"
    spec = load_scenario(str(tmp_path / "tiny.yaml"), corpus_split="heldout")
    write_files(generate(spec), events, tmp_path / "l.jsonl")
    rows = [orjson.loads(x) for x in events.read_bytes().splitlines()]
    prompts = [r["prompt"] for r in rows if "prompt" in r]
    # every prompt is a held-out row inside whatever wrapper the archetype added
    held = {p for c in heldout.values() for p in c.prompts}
    assert all(any(h in p for h in held) for p in prompts[:300])
    assert not any(row_split(p) == "tuning" and p in held for p in prompts)
    assert run_of_file(events) == Run("tiny", 3, "heldout")


# -- the commands ---------------------------------------------------------------------------


def test_evaluate_heldout_refuses_a_tuning_run_before_simulating(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["evaluate-heldout", "--out", str(tmp_path / "o"), "--only", "adaptive:101"]
    )
    assert res.exit_code != 0
    assert "tuning run" in _said(res.output)
    assert not (tmp_path / "o").exists()


def test_evaluate_heldout_flag_refuses_a_tuning_file(tiny_protocol: Path, tmp_path: Path) -> None:
    spec = load_scenario(str(tiny_protocol.parent / "tiny.yaml"), seed=3, corpus_split="tuning")
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    write_files(generate(spec), events, labels)
    args = ["evaluate", "--events", str(events), "--labels", str(labels), "--out", str(tmp_path)]
    res = CliRunner().invoke(app, [*args, "--heldout", "--protocol", str(tiny_protocol)])
    assert res.exit_code != 0 and "tuning run" in _said(res.output)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_evaluate_heldout_end_to_end_on_a_protocol_of_its_own(
    tiny_protocol: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["evaluate-heldout", "--protocol", str(tiny_protocol), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    m = orjson.loads((out / "metrics.json").read_bytes())
    assert [r["run"] for r in m["runs"]] == [
        {"scenario": "tiny", "seed": 4, "corpus_split": "heldout"}
    ]
    matrix = m["pooled"]["methods"][0]["robustness"]
    assert set(matrix["variants"]) == {"swarm", "residential_fleet"}
    assert matrix["variants"]["swarm"]["accounts"] == 20
    assert matrix["variants"]["swarm"]["family"] == "swarm"
    assert set(matrix["honest_groups"]) == {"company_card", "hackathon"}
    assert matrix["honest_groups"]["hackathon"]["accounts"] == 8
    assert 30 <= matrix["background"]["accounts"] <= 40  # hobbyists who sent anything
    folds = {f["name"]: f for f in m["folds"]}
    assert folds["without-swarm"]["accounts"] == 20
    assert folds["without-swarm"]["tuning_view"][0]["drop_archetypes"] == ["swarm"]
    report = (out / "report.md").read_text()
    for heading in ("## Robustness matrix", "## Leave-one-family-out folds", "### tiny:4"):
        assert heading in report
    assert "| swarm | swarm | 20 |" in report
    assert "Cluster coverage" in report and "| swarm | 20 |" in report
    assert "| hackathon |" in report
    # the same held-out file through `evaluate --heldout` is accepted and titled so
    labels = next((out / "runs").glob("*_labels.jsonl"))
    run_file = Path(str(labels).removesuffix("_labels.jsonl") + ".jsonl")
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--events",
            str(run_file),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "single"),
            "--heldout",
            "--protocol",
            str(tiny_protocol),
        ],
    )
    assert res.exit_code == 0, res.output
    single = (tmp_path / "single" / "report.md").read_text()
    assert single.startswith("# Held-out evaluation: tiny:4")
    assert "## Robustness matrix" in single
