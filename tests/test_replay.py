"""Offline replay: CONTRACT §3 report shape, alert accounting, bad lines never fatal."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from distillguard.detectors.pipeline import BatchOutput, CountingPipeline
from distillguard.evaluation.replay import decoder_for, replay
from distillguard.events import RequestEvent
from distillguard.records import AccountRisk, Alert, Cluster, iso
from distillguard.settings import get_settings

T0 = 1_794_787_200.0  # 2026-11-16T00:00:00Z


class ThirdEventPipeline(CountingPipeline):
    """A tiny real pipeline with known behaviour: an account alert on an account's 3rd
    event; a cluster alert naming ``b`` and ``c`` on ``c``'s first event."""

    def __init__(self) -> None:
        super().__init__()
        self.n: dict[str, int] = {}
        self.clusters: list[Cluster] = []
        self.alerts: list[Alert] = []

    def process(self, event: RequestEvent) -> bool:
        super().process(event)
        n = self.n[event.account_id] = self.n.get(event.account_id, 0) + 1
        now = iso(float(event.ts))
        if event.account_id == "c" and n == 1:
            self.clusters.append(
                Cluster(cluster_id="clu_1", members=["b", "c"], risk=0.95, level="critical")
            )
            self.alerts.append(
                Alert(
                    alert_id="al_c",
                    subject_type="cluster",
                    subject_id="clu_1",
                    risk=0.95,
                    level="critical",
                    created_at=now,
                    updated_at=now,
                    members=["b", "c"],
                )
            )
            return True
        if n == 3:
            self.alerts.append(
                Alert(
                    alert_id=f"al_{event.account_id}",
                    subject_type="account",
                    subject_id=event.account_id,
                    risk=0.8,
                    level="high",
                    created_at=now,
                    updated_at=now,
                )
            )
            return True
        return False

    def drain(self) -> BatchOutput:
        out = super().drain()
        out.clusters, self.clusters = self.clusters, []
        out.alerts, self.alerts = self.alerts, []
        return out

    def risk(self, account_id: str) -> AccountRisk:
        risk = {"a": 0.8, "b": 0.95, "c": 0.95}.get(account_id, 0.1)
        return AccountRisk(
            account_id=account_id, risk=risk, cluster_id="clu_1" if account_id in "bc" else None
        )


def _line(i: int, acct: str, **kw: object) -> bytes:
    rec = {
        "event_id": f"e{i}",
        "ts": T0 + i,
        "account_id": acct,
        "model": "m",
        "input_tokens": 3,
        "output_tokens": 5,
        "status": 200,
        **kw,
    }
    return orjson.dumps(rec) + b"\n"


def test_first_alerts_count_events_before_them_for_account_and_cluster_alerts() -> None:
    order = ["a", "b", "a", "b", "c", "a", "d", "b", "b"]
    lines = [_line(i, acct) for i, acct in enumerate(order)]
    lines[6:6] = [b"not json\n", b"\n", b'{"event_id": "x"}\n']
    report = replay(lines, ThirdEventPipeline(), decoder_for(get_settings()), drain_every=2)
    assert report.events == 9 and report.rejected == 2
    a, b, c, d = (report.accounts[k] for k in "abcd")
    assert (a.events_before_first_alert, a.first_alert_ts) == (2, T0 + 5)
    # b is named by the cluster alert raised on c's first event, after 2 of b's events;
    # its own 3rd-event alert later does not move its first alert.
    assert (b.events_before_first_alert, b.first_alert_ts) == (2, T0 + 4)
    assert (c.events_before_first_alert, c.first_alert_ts) == (0, T0 + 4)
    assert d.first_alert_ts is None and d.events_before_first_alert is None
    assert report.clusters["clu_1"].first_alert_ts == T0 + 4
    doc = report.to_json()
    assert doc["accounts"]["b"] == {
        "risk": 0.95,
        "level": "critical",
        "first_alert_ts": "2026-11-16T00:00:04Z",
        "events_before_first_alert": 2,
        "cluster_id": "clu_1",
    }
    assert doc["clusters"] == [
        {
            "cluster_id": "clu_1",
            "members": ["b", "c"],
            "risk": 0.95,
            "first_alert_ts": "2026-11-16T00:00:04Z",
            # beyond the contract's fields: the members its alert named
            "named": ["b", "c"],
        }
    ]
    assert sum(report.rejected_reasons.values()) == 2


def test_replay_command_writes_the_contract_report(tmp_path: Path) -> None:
    from distillguard.cli import app

    events, labels, rep = tmp_path / "e.jsonl", tmp_path / "l.jsonl", tmp_path / "r.json"
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: t\nseed: 3\nstart: '2026-11-16T00:00:00Z'\ndays: 0.25\n"
        "models: [{name: m, role: flagship}]\n"
        "benign: {hobbyist: {accounts: 20}, chat_backend: {accounts: 1}}\n"
        "campaigns: [{id: b1, archetype: bulk_distiller, accounts: 1, daily_requests: 4000}]\n"
    )
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["simulate", "--scenario", str(scenario), "--out", str(events), "--labels", str(labels)],
    )
    assert res.exit_code == 0, res.output
    with events.open("ab") as fh:
        fh.write(b'{"event_id": "broken"\n')
    res = runner.invoke(app, ["replay", str(events), "--report", str(rep)])
    assert res.exit_code == 0, res.output
    doc = orjson.loads(rep.read_bytes())
    assert set(doc) == {"events", "rejected", "accounts", "clusters"}
    assert doc["rejected"] == 1
    assert doc["events"] == len(events.read_bytes().splitlines()) - 1
    seen = {orjson.loads(x)["account_id"] for x in events.read_bytes().splitlines()[:-1]}
    assert set(doc["accounts"]) == seen
    for entry in doc["accounts"].values():
        assert set(entry) == {
            "risk",
            "level",
            "first_alert_ts",
            "events_before_first_alert",
            "cluster_id",
        }
        assert 0.0 <= entry["risk"] <= 1.0
        assert entry["level"] in {"low", "medium", "high", "critical"}
        assert (entry["first_alert_ts"] is None) == (entry["events_before_first_alert"] is None)
    assert isinstance(doc["clusters"], list)


def test_an_event_id_is_scoped_to_its_account() -> None:
    """The same id twice for one account is one request; reused by another account, it is
    that account's request (an upstream bug) and cannot suppress anybody else's."""
    lines = [
        _line(0, "a"),
        _line(0, "a"),  # a duplicate: same account, same id
        _line(0, "b"),  # the same id under another account: b's own request
        _line(1, "b"),
    ]
    report = replay(lines, CountingPipeline(), decoder_for(get_settings()))
    assert report.events == 3 and report.duplicates == 1
    assert report.accounts["a"].events == 1 and report.accounts["b"].events == 2
