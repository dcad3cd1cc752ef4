"""``simulate`` then ``evaluate`` on the small scenario, through the command line."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from distillguard.cli import app


def test_evaluate_small_end_to_end(tmp_path: Path) -> None:
    events, labels, out = tmp_path / "e.jsonl", tmp_path / "l.jsonl", tmp_path / "eval"
    runner = CliRunner()
    res = runner.invoke(
        app, ["simulate", "--scenario", "small", "--out", str(events), "--labels", str(labels)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["evaluate", "--events", str(events), "--labels", str(labels), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    m = orjson.loads((out / "metrics.json").read_bytes())
    truth = [orjson.loads(x) for x in labels.read_bytes().splitlines()]
    assert m["accounts"] == len(truth)
    assert m["distiller_accounts"] == sum(t["label"] == "distiller" for t in truth)
    assert m["events"] == len(events.read_bytes().splitlines()) and m["rejected"] == 0
    names = [x["name"] for x in m["methods"]]
    assert len(names) == 3 and names[0].startswith("distillguard")
    campaigns = {t["campaign"] for t in truth if t["campaign"]}
    benign_archetypes = {t["archetype"] for t in truth if t["label"] == "benign"}
    for x in m["methods"]:
        assert 0.0 <= x["pr_auc"] <= 1.0 and 0.0 <= x["roc_auc"] <= 1.0
        assert set(x["campaign_coverage"]) == campaigns
        assert set(x["false_alerts_by_archetype"]) == benign_archetypes
        a = x["alerted"]
        assert a["tp"] + a["fn"] == m["distiller_accounts"]
        assert a["fp"] == sum(v["flagged"] for v in x["false_alerts_by_archetype"].values())
    # Rate limit: fitted on benign hours; no quiet hydra account can exceed it.
    rl = m["methods"][1]
    assert rl["params"]["limit_per_hour"] > 0
    assert rl["campaign_coverage"]["hydra-1"]["flagged"] == 0
    report = (out / "report.md").read_text()
    assert "| method | PR-AUC | ROC-AUC |" in report
    assert all(f"| {n} |" in report for n in names)
    for png in ("pr_curves.png", "delay_cdf.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    replayed = orjson.loads((out / "replay_report.json").read_bytes())
    assert set(replayed["accounts"]) == {t["account_id"] for t in truth}
