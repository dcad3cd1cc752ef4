"""Each account's last request times (the ring) and the cluster timeline built from them."""

from __future__ import annotations

import pytest

from distillguard.detectors import request_times as ring
from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.cluster_timeline import cluster_timeline
from distillguard.detectors.linkage import LinkedPipeline
from distillguard.events import RequestEvent
from distillguard.records import Cluster
from distillguard.settings import get_settings

T0 = 1_795_000_000.0


def event(i: int, account: str, ts: float, **kw: object) -> RequestEvent:
    return RequestEvent(
        event_id=f"{account}-{i}",
        ts=ts,
        account_id=account,
        model="m",
        input_tokens=10,
        output_tokens=10,
        status=200,
        **kw,  # type: ignore[arg-type]
    )


def test_ring_keeps_the_last_times_in_arrival_order_and_is_bounded() -> None:
    times, cursor = ring.new_ring(), 0
    arrivals = [T0 + s for s in (5, 1, 9, 12.7, 13, 20, 21.2)]  # one out of order
    for ts in arrivals:
        cursor = ring.record(times, cursor, ts, cap=4)
        assert len(times) <= 4
    assert ring.in_order(times, cursor) == [int(t) for t in arrivals[-4:]]
    # a checkpoint is oldest first, so the restored ring's next write drops the oldest
    restored = ring.from_bytes(ring.to_bytes(times, cursor))
    assert restored.tolist() == [int(t) for t in arrivals[-4:]]
    cursor = ring.record(restored, 0, T0 + 30, cap=4)
    assert ring.in_order(restored, cursor) == [int(t) for t in arrivals[-3:]] + [int(T0 + 30)]


def test_ring_clamps_times_it_cannot_hold_and_refuses_torn_bytes() -> None:
    times = ring.new_ring()
    for ts in (-5.0, float("nan"), 2.0**40, float("inf")):
        ring.record(times, 0, ts, cap=8)
    assert times.tolist() == [0, 0, ring.MAX_SECOND, ring.MAX_SECOND]
    assert ring.record(times, 0, T0, cap=0) == 0 and len(times) == 4  # cap 0 keeps nothing new
    assert ring.from_bytes(ring.to_bytes(times, 0), cap=2).tolist() == [ring.MAX_SECOND] * 2
    with pytest.raises(ValueError, match="uint32"):
        ring.from_bytes(b"\x01\x02\x03")


def test_account_pipeline_times_survive_snapshot_and_restore() -> None:
    config = get_settings().detectors.model_copy(update={"request_times_kept": 8})
    pipe = AccountPipeline(config)
    for i in range(11):
        pipe.process(event(i, "a", T0 + 7 * i))
    assert pipe.request_times("a") == [int(T0 + 7 * i) for i in range(3, 11)]
    assert pipe.requests_made("a") == 11
    assert pipe.request_times("nobody") == [] and pipe.requests_made("nobody") == 0
    fresh = AccountPipeline(config)
    fresh.restore(pipe.snapshot_shared())
    fresh.restore_accounts(pipe.snapshot_accounts(["a"]))
    assert fresh.request_times("a") == pipe.request_times("a")
    for p in (pipe, fresh):  # a restart continues exactly where the original is
        for i in range(11, 14):
            p.process(event(i, "a", T0 + 7 * i))
    assert fresh.request_times("a") == pipe.request_times("a")
    assert fresh.request_times("a")[0] == int(T0 + 7 * 6)
    # a smaller ring after a restart keeps the newest times
    smaller = AccountPipeline(config.model_copy(update={"request_times_kept": 3}))
    smaller.restore_accounts(pipe.snapshot_accounts(["a"]))
    assert smaller.request_times("a") == pipe.request_times("a")[-3:]


def test_cluster_timeline_shows_the_most_active_ordered_by_first_request() -> None:
    kept = {"a": [50, 40], "b": [10, 60], "c": [30], "d": [5, 6, 7], "e": []}
    made = {"a": 2, "b": 9, "c": 1, "d": 9}
    members = ["a", "b", "c", "d", "e", "f"]
    cluster = Cluster(cluster_id="clu_3", members=members, risk=0.8, level="high")
    t = cluster_timeline(cluster, lambda m: made.get(m, 0), lambda m: kept[m], cap=3)
    # b and d (9 requests) and a (2) are the most active; c is over the cap, e and f
    # have no times: all three hidden. Rows by first kept request.
    assert [(m.account_id, m.times, m.requests) for m in t.members] == [
        ("d", [5, 6, 7], 9),
        ("b", [10, 60], 9),
        ("a", [40, 50], 2),
    ]
    assert t.hidden == 3 and t.cluster_id == "clu_3"


def test_linked_pipeline_drains_each_changed_cluster_with_its_timeline() -> None:
    config = get_settings().detectors
    p = LinkedPipeline(AccountPipeline(config), timeline_members=3)
    sent: dict[str, list[int]] = {}
    for i in range(16):  # five accounts on one card, requests at known seconds
        account = f"acct{i % 5}"
        ts = T0 + 60 * (i // 5) + (i % 5)
        sent.setdefault(account, []).append(int(ts))
        p.process(event(i, account, ts, payment_fingerprint="card-1", ip=f"198.51.100.{i % 5}"))
    out = p.drain()
    assert [c.members for c in out.clusters] == [sorted(sent)]
    (timeline,) = out.timelines
    assert timeline.cluster_id == out.clusters[0].cluster_id
    # acct0 sent four requests, the others three: acct0, then the smallest ids
    assert [m.account_id for m in timeline.members] == ["acct0", "acct1", "acct2"]
    assert all(m.times == sent[m.account_id] for m in timeline.members)
    assert timeline.hidden == 2
    assert p.drain().timelines == []  # nothing changed, nothing drained
