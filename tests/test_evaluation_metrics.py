"""Metrics and baselines against cases worked out by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from distillguard.evaluation import metrics
from distillguard.evaluation.baselines import (
    EventColumns,
    daily_aggregates,
    isolation_forest,
    rate_limit,
)
from distillguard.events import RequestEvent

T0 = 1_794_787_200.0  # 2026-11-16T00:00:00Z


def test_pr_auc_by_hand() -> None:
    # ranked: 0.9 (+), 0.8 (-), 0.7 (+), 0.2 (-), 0.1 (+)
    # precision at each positive: 1/1, 2/3, 3/5 -> AP = (1 + 2/3 + 3/5) / 3
    y = [1, 0, 1, 0, 1]
    s = [0.9, 0.8, 0.7, 0.2, 0.1]
    assert metrics.pr_auc(y, s) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert math.isnan(metrics.pr_auc([0, 0], [0.1, 0.2]))


def test_roc_auc_by_hand_with_ties() -> None:
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs win, tie(1/2), win, win -> 3.5/4
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)
    assert math.isnan(metrics.roc_auc([1, 1], [0.1, 0.2]))


def test_recall_at_fpr_allows_floor_of_benign_share() -> None:
    # 2,000 benign accounts: 0.1% allows 2 false positives. Benign scores 0..1999 / 2000,
    # so the threshold is the 3rd highest benign score (1997/2000); distillers above it
    # are 0.999 and 1.5 (2 of 4); 0.9985 == the threshold's tie is not counted.
    benign = [i / 2000 for i in range(2000)]
    distillers = [0.999, 1.5, 0.9985, 0.2]
    y = [0] * len(benign) + [1] * len(distillers)
    recall, thr = metrics.recall_at_fpr(y, benign + distillers, 0.001)
    assert thr == pytest.approx(1997 / 2000)
    assert recall == pytest.approx(0.5)
    # With fewer than 1,000 benign accounts no false positive is allowed at all.
    recall, thr = metrics.recall_at_fpr([0, 0, 1, 1], [0.3, 0.6, 0.6, 0.7], 0.001)
    assert (recall, thr) == (0.5, 0.6)


def test_precision_recall_counts_and_undefined_cases() -> None:
    pr = metrics.precision_recall(
        [1, 1, 1, 0, 0, 0, 0], [True, True, False, True, False, False, False]
    )
    assert (pr["tp"], pr["fp"], pr["fn"]) == (2, 1, 1)
    assert pr["precision"] == pytest.approx(2 / 3)
    assert pr["recall"] == pytest.approx(2 / 3)
    assert pr["benign_fpr"] == pytest.approx(1 / 4)
    nothing = metrics.precision_recall([1, 0], [False, False])
    assert math.isnan(nothing["precision"]) and nothing["recall"] == 0.0


def test_coverage_and_summary() -> None:
    cov = metrics.coverage({"a": "x", "b": "x", "c": "x", "d": "y"}, ["a", "c", "zzz"])
    assert cov["x"] == {"flagged": 2, "total": 3, "share": pytest.approx(2 / 3)}
    assert cov["y"]["flagged"] == 0
    assert metrics.summary([]) == {"n": 0, "median": None, "p90": None, "mean": None}
    assert metrics.summary([10, 20])["median"] == 15.0


def test_cluster_metrics_by_hand() -> None:
    labels = {"h1": 1, "h2": 1, "h3": 1, "h4": 1, "b1": 0, "b2": 0, "b3": 0}
    clusters = [["h1", "h2", "b1"], ["b2", "b3"], ["h3"]]
    out = metrics.cluster_metrics(clusters, labels, ["h1", "h2", "h3", "h4"])
    assert out == {
        "clusters": 3,
        "hydra_coverage": 0.75,
        "member_precision": 0.5,
        "largest_benign": 2,
    }


def _ev(i: int, acct: str, ts: float, **kw: Any) -> RequestEvent:
    return RequestEvent(
        event_id=str(i),
        ts=ts,
        account_id=acct,
        model=kw.pop("model", "m"),
        input_tokens=10,
        output_tokens=20,
        status=200,
        **kw,
    )


def test_rate_limit_fits_benign_hours_and_finds_the_crossing_request() -> None:
    cols = EventColumns()
    i = 0
    # Benign: 100 accounts, 3 requests in each of 10 hours -> every benign hour has 3.
    for a in range(100):
        for h in range(10):
            for k in range(3):
                cols.add(_ev(i, f"b{a}", T0 + h * 3600 + k * 60))
                i += 1
    # Attacker: 2 quiet hours (2 requests), then 10 requests in hour 5.
    for h, n in ((0, 2), (1, 2), (5, 10)):
        for k in range(n):
            cols.add(_ev(i, "x", T0 + h * 3600 + k * 10))
            i += 1
    res = rate_limit(cols, {f"b{a}" for a in range(100)})
    assert res.params["limit_per_hour"] == 3.0
    assert res.alerted == {"x"}
    # 4 events before hour 5; the 4th request of hour 5 is the first above 3.
    assert res.events_before["x"] == 4 + 3
    assert res.first_alert_ts["x"] == T0 + 5 * 3600 + 30
    assert res.scores["x"] == 10.0 and res.scores["b0"] == 3.0


def test_daily_aggregates_and_isolation_forest_single_out_the_odd_account() -> None:
    cols = EventColumns()
    i = 0
    rng = np.random.default_rng(0)
    for a in range(60):
        for _ in range(20):
            cols.add(_ev(i, f"b{a}", T0 + float(rng.uniform(0, 86_400)), temperature=0.7))
            i += 1
    for k in range(2000):  # regular, logprobs, temperature 0, one day
        cols.add(_ev(i, "x", T0 + k * 40.0, logprobs=True, temperature=0.0, n=4))
        i += 1
    owners, x = daily_aggregates(cols)
    ids = cols.account_ids
    row = int(np.flatnonzero(owners == ids.index("x"))[0])
    assert x[row, 0] == pytest.approx(np.log1p(2000))  # log_requests
    assert x[row, 4] == 1.0 and x[row, 5] == 1.0 and x[row, 7] == 1.0  # logprobs, temp0, n>1
    assert x[row, 11] == pytest.approx(0.0, abs=1e-6)  # perfectly regular arrivals
    res = isolation_forest(cols)
    assert max(res.scores, key=res.scores.get) == "x"  # type: ignore[arg-type]
    assert "x" in res.alerted
    assert res.events_before["x"] == 2000  # batch: known only at the end


def test_segments_and_campaign_delays_by_hand() -> None:
    from distillguard.evaluation.baselines import MethodResult
    from distillguard.evaluation.evaluate import Truth, campaign_delays, segment_metrics, segments

    truth = {
        "b1": Truth(0, None, "hobbyist"),
        "b2": Truth(0, None, "hobbyist"),
        "b3": Truth(0, None, "hobbyist"),
        "bulk": Truth(1, "bulk-1", "bulk_distiller"),
        "h1": Truth(1, "hydra-1", "hydra"),
        "h2": Truth(1, "hydra-1", "hydra"),
    }
    events = {"b1": 10, "b2": 20, "b3": 30, "bulk": 900, "h1": 5, "h2": 50}
    groups = segments(truth, events)
    # benign median is 20 events: h2 (50) is an undiluted member, h1 (5) is not
    assert sorted(groups["single_account"]) == ["bulk", "h2"]
    assert sorted(groups["coordinated"]) == ["h1", "h2"]

    method = MethodResult(
        "m", scores={"bulk": 0.9, "h1": 0.2, "h2": 0.6, "b1": 0.3}, alerted={"bulk"}
    )
    method.first_alert_ts.update({"bulk": 1_000.0, "h2": 4_000.0})
    method.events_before.update({"bulk": 7, "h2": 30})
    single = segment_metrics(method, groups["single_account"], threshold=0.5)
    assert single["recall_at_fpr_0.1pct"] == 1.0  # 0.9 and 0.6 are above 0.5
    assert single["alerted_recall"] == 0.5
    assert single["delay_events"]["median"] == 18.5

    first_ts = {"bulk": 400.0, "h1": 100.0, "h2": 700.0}
    delays = campaign_delays(method, truth, first_ts)
    assert delays == {"bulk-1": 10.0, "hydra-1": (4_000.0 - 100.0) / 60.0}
