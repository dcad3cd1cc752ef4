"""The account pipeline end to end on crafted streams: alerts, drain, state, eviction."""

from __future__ import annotations

import pickle
import random
from collections import Counter

import msgspec
import pytest

from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.pipeline import CountingPipeline, build_pipeline
from distillguard.events import RequestEvent
from distillguard.records import Label
from distillguard.settings import Detectors, Settings, get_settings
from tests.pipelines import alerts_as_raised, raised

T0 = 1_790_000_000.0
TEMPLATE = "{p}\n\nThink through this step by step and show all of your reasoning."
TASKS = [
    "Write a Python function that merges two sorted lists of length {i}.",
    "Implement a JavaScript class for a bank account with id {i}.",
    "Write a SQL query joining orders and customers for region {i}.",
    "Use the calculator tool to compute the compound interest for year {i}.",
]
QUESTIONS = [
    "When did the eagles win last super bowl?",
    "Who wrote he ain't heavy he's my brother?",
    "How many seasons of the office are there?",
    "What is the capital of australia?",
    "Best way to cook rice?",
]


def bulk_events(account: str, n: int, start: float = T0, gap: float = 3.0) -> list[RequestEvent]:
    """A bulk distiller: metronome pace, templated reasoning requests, long outputs."""
    return [
        RequestEvent(
            event_id=f"{account}-{i}",
            ts=start + gap * i,
            account_id=account,
            model="atlas",
            input_tokens=60,
            output_tokens=1800,
            status=429 if i % 40 == 0 else 200,
            org_id="org-bulk",
            ip=f"203.0.113.{i % 3}",
            user_agent="python-requests/2.31.0",
            temperature=0.0,
            max_tokens=8192,
            prompt=TEMPLATE.format(p=TASKS[i % 4].format(i=i)),
        )
        for i in range(n)
    ]


def human_events(account: str, n: int, seed: int, start: float = T0) -> list[RequestEvent]:
    """A person: a few sessions, think time, trivia, an SDK."""
    rng = random.Random(seed)
    ts, out = start, []
    for i in range(n):
        ts += rng.expovariate(1 / 40.0) if i % 5 else rng.uniform(2, 8) * 3600
        out.append(
            RequestEvent(
                event_id=f"{account}-{i}",
                ts=ts,
                account_id=account,
                model="atlas",
                input_tokens=20,
                output_tokens=150,
                status=200,
                ip="198.51.100.9",
                user_agent="anthropic-python/0.40.1",
                temperature=0.7,
                prompt=rng.choice(QUESTIONS) + f" ({rng.random():.3f})",
            )
        )
    return out


def merged(*streams: list[RequestEvent]) -> list[RequestEvent]:
    return sorted((e for s in streams for e in s), key=lambda e: (float(e.ts), e.event_id))


@pytest.fixture
def config() -> Detectors:
    return get_settings().detectors


def test_pipeline_choice_by_settings() -> None:
    from distillguard.detectors.linkage.pipeline import LinkedPipeline

    shipped = build_pipeline(get_settings())
    assert isinstance(shipped, LinkedPipeline)  # shipped default
    tuned = build_pipeline(Settings(detectors={"linkage": {"link_threshold": 2.5}}))  # type: ignore[arg-type]
    assert tuned.linkage.config.link_threshold == 2.5  # type: ignore[attr-defined]
    assert shipped.linkage.config.link_threshold != 2.5
    account = Settings(detectors={"pipeline": "account"})  # type: ignore[arg-type]
    assert isinstance(build_pipeline(account), AccountPipeline)
    counting = Settings(detectors={"pipeline": "counting"})  # type: ignore[arg-type]
    assert isinstance(build_pipeline(counting), CountingPipeline)
    with pytest.raises(ValueError):
        build_pipeline(Settings(detectors={"pipeline": "nope"}))  # type: ignore[arg-type]


def test_distiller_alerts_once_with_evidence_and_humans_stay_quiet(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    events = merged(bulk_events("bulk", 600), *(human_events(f"h{k}", 40, k) for k in range(5)))
    alerts = raised(pipe, events)
    by_subject = Counter(a.subject_id for a in alerts)
    assert set(by_subject) == {"bulk"}
    first = next(a for a in alerts if a.subject_id == "bulk")
    assert first.subject_type == "account"
    assert first.level in ("high", "critical")
    assert first.org_id == "org-bulk"
    assert first.features["cot_elicitation_rate"] > 0.9
    assert 1 <= len(first.sample_prompts) <= 5
    assert all(len(p) <= 500 for p in first.sample_prompts)
    assert first.reasons and all(r.signal for r in first.reasons)
    # deduplicated: an update needs doubled events or much higher risk, not every event
    assert by_subject["bulk"] <= 4
    assert len({a.alert_id for a in alerts}) == 1
    for k in range(5):
        risk = pipe.risk(f"h{k}")
        assert risk.level == "low" and risk.risk < 0.2


def test_no_alert_inside_a_short_burst(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    burst = bulk_events("burst", 150, gap=0.5)  # 75 seconds of activity
    assert not raised(pipe, burst)


def test_reasons_carry_value_and_population_percentile(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    # people have been around for a day and a half when the distiller starts
    people = (human_events(f"h{k}", 40, k, start=T0 - 129_600) for k in range(30))
    for e in merged(bulk_events("bulk", 400), *people):
        pipe.process(e)
    reasons = pipe.risk("bulk").reasons
    assert reasons
    assert any(
        r.population_percentile is not None and r.population_percentile > 90 for r in reasons
    )
    signals = {r.signal for r in reasons}
    assert signals & {
        "cot_elicitation_rate",
        "interarrival_log_std",
        "output_tokens_per_hour",
        "requests_per_hour_6h",
        "template_repeat_rate",
    }


def test_drain_reports_counts_changes_and_alerts_once(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    events = merged(bulk_events("bulk", 300), human_events("h", 30, 1))
    for e in events:
        pipe.process(e)
    out = pipe.drain()
    assert out.counts == Counter({"bulk": 300, "h": 30})
    assert {r.account_id for r in out.risks} >= {"bulk"}
    assert [a.subject_id for a in out.alerts].count("bulk") >= 1
    assert out.clusters == []
    again = pipe.drain()
    assert not again  # nothing changed since
    pipe.process(human_events("h", 31, 1)[-1])
    assert pipe.drain().counts == Counter({"h": 1})


def test_unknown_account_is_low_risk(config: Detectors) -> None:
    risk = AccountPipeline(config).risk("nobody")
    assert (risk.risk, risk.level, risk.reasons) == (0.0, "low", [])


def state_after(pipe: AccountPipeline, events: list[RequestEvent]) -> list[object]:
    """Everything observable: alerts as they happen, then every account's risk."""
    seen: list[object] = []
    for a in alerts_as_raised(pipe, events):
        seen.append((a.alert_id, a.subject_id, a.risk, a.updated_at))
    out = pipe.drain()
    seen.append(tuple(sorted(out.counts.items())))
    seen.extend(msgspec.json.encode(pipe.risk(a)) for a in sorted(pipe.accounts()))
    return seen


def mixed_stream() -> list[RequestEvent]:
    return merged(
        bulk_events("bulk", 500),
        bulk_events("late", 300, start=T0 + 900),
        *(human_events(f"h{k}", 30, k) for k in range(8)),
    )


def test_restored_pipeline_continues_with_the_same_scores(config: Detectors) -> None:
    events = mixed_stream()
    cut = len(events) // 2
    original = AccountPipeline(config)
    for e in events[:cut]:
        original.process(e)
    original.drain()
    snapshot = original.snapshot()
    restored = AccountPipeline(config)
    restored.restore(snapshot)
    assert sorted(restored.accounts()) == sorted(original.accounts())
    assert state_after(restored, events[cut:]) == state_after(original, events[cut:])


def test_incremental_snapshots_restore_the_same_state(config: Detectors) -> None:
    events = mixed_stream()
    cut = len(events) // 3
    original = AccountPipeline(config)
    for e in events[:cut]:
        original.process(e)
    original.drain()
    shared = original.snapshot_shared()
    per_account = original.snapshot_accounts([*original.accounts(), "not-tracked"])
    assert "not-tracked" not in per_account
    restored = AccountPipeline(config)
    restored.restore(shared)
    assert restored.accounts() == []
    restored.restore_accounts(per_account)
    assert state_after(restored, events[cut:]) == state_after(original, events[cut:])


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00\x01\x02 not msgpack",
        pickle.dumps({"format": "distillguard.detectors.account/1"}),
        msgspec.msgpack.encode({"format": "someone-else/1", "shared": {}}),
        msgspec.msgpack.encode({"format": "distillguard.detectors.account/1", "shared": {}}),
        msgspec.msgpack.encode([1, 2, 3]),
    ],
)
def test_restore_rejects_anything_but_a_snapshot_and_keeps_state(
    config: Detectors, garbage: bytes
) -> None:
    pipe = AccountPipeline(config)
    for e in bulk_events("bulk", 50):
        pipe.process(e)
    before = pipe.snapshot()
    with pytest.raises(ValueError):
        pipe.restore(garbage)
    assert pipe.snapshot() == before


def test_corrupt_account_state_is_rejected(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    with pytest.raises(ValueError):
        pipe.restore_accounts({"a": msgspec.msgpack.encode(["x"] * 11)})
    with pytest.raises(ValueError):
        pipe.restore_accounts({"a": b"\xff\xfe"})
    assert pipe.accounts() == []


def test_idle_accounts_are_evicted(config: Detectors) -> None:
    pipe = AccountPipeline(config.model_copy(update={"idle_evict_s": 3600.0}))
    for e in human_events("old", 5, 1):
        pipe.process(e)
    last_old = max(float(e.ts) for e in human_events("old", 5, 1))
    for e in bulk_events("new", 300, start=last_old + 7200):
        pipe.process(e)
    assert pipe.evict_idle() == 1
    assert pipe.accounts() == ["new"]
    assert pipe.risk("old").risk == 0.0


def test_eviction_reads_the_clock_it_is_given(config: Detectors) -> None:
    """Idleness is judged by the shared watermark, not by the pipeline's own maximum."""
    pipe = AccountPipeline(config.model_copy(update={"idle_evict_s": 3600.0}))
    clock = pipe.clock  # it made its own and observes every event into it
    stream = bulk_events("a", 300)
    for e in stream:
        pipe.process(e)
    assert clock.now == sorted(float(e.ts) for e in stream)[-3]  # median of the last five
    assert pipe.evict_idle() == 0
    clock.advance(clock.now + 7200)  # the other stages' events moved the watermark on
    assert pipe.evict_idle() == 1
    assert pipe.accounts() == []


def test_account_cap_evicts_the_least_recent(config: Detectors) -> None:
    pipe = AccountPipeline(config.model_copy(update={"max_accounts": 3}))
    for k in range(5):
        pipe.process(bulk_events(f"a{k}", 1, start=T0 + k)[0])
    pipe.evict_idle()
    assert sorted(pipe.accounts()) == ["a2", "a3", "a4"]


def test_dismissal_closes_the_alert_and_a_new_one_can_open(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    events = bulk_events("bulk", 1200)
    alerts = raised(pipe, events[:400])
    assert alerts
    pipe.learn_label(
        Label(
            account_id="bulk",
            label="benign",
            alert_id=alerts[0].alert_id,
            features=alerts[0].features,
        )
    )
    later = raised(pipe, events[400:])
    # one dismissal cannot silence a blatant extractor (bounded adjustment): it comes
    # back as a fresh case, not as an update of the dismissed one
    assert later
    assert later[0].alert_id != alerts[0].alert_id
    assert later[0].history[0].action == "opened"


def test_labels_without_features_use_the_accounts_current_state(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    for e in bulk_events("bulk", 100):
        pipe.process(e)
    pipe.learn_label(Label(account_id="bulk", label="distiller"))
    pipe.learn_label(Label(account_id="never-seen", label="benign"))  # nothing to learn from
    assert pipe.feedback.labels_seen() == (0, 1)


def test_release_pivot_is_seen(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    old = bulk_events("pivot", 200, gap=60.0)
    # a model first seen 12 h into the stream, and the account moving to it
    new = [
        msgspec.structs.replace(
            e, model="atlas-next", ts=float(e.ts) + 12 * 3600, event_id=e.event_id + "n"
        )
        for e in bulk_events("pivot", 200, gap=60.0)
    ]
    for e in old + new:
        pipe.process(e)
    features = pipe.account_features("pivot")
    assert features is not None
    assert features["new_model_share"] > 0.9


def test_odd_but_valid_events_do_not_break_anything(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    odd = [
        RequestEvent(
            event_id="1",
            ts=T0,
            account_id="x",
            model="m",
            input_tokens=0,
            output_tokens=0,
            status=500,
            prompt="",
        ),
        RequestEvent(
            event_id="2",
            ts=T0,
            account_id="x",
            model="m",
            input_tokens=0,
            output_tokens=10_000_000,
            status=200,
            prompt="\ud800 lone surrogate",
        ),
        RequestEvent(
            event_id="3",
            ts=T0 - 100,
            account_id="x",
            model="m",
            input_tokens=5,
            output_tokens=5,
            status=429,
            prompt="x" * 200_000,
            n=1024,
            top_logprobs=1024,
            temperature=100.0,
        ),
        RequestEvent(
            event_id="4",
            ts=T0 + 1,
            account_id="x",
            model="m",
            input_tokens=5,
            output_tokens=5,
            status=200,
            prompt_fingerprint="FFFFFFFFFFFFFFFF",
        ),
    ]
    for e in odd:
        pipe.process(e)
    assert pipe.drain().counts["x"] == 4
    assert 0.0 <= pipe.risk("x").risk <= 1.0


def test_forgotten_accounts_start_afresh(config: Detectors) -> None:
    pipe = AccountPipeline(config)
    for e in bulk_events("bulk", 50) + human_events("h", 5, 1):
        pipe.process(e)
    pipe.forget(["bulk", "nobody"])  # an unknown account is no error
    assert pipe.accounts() == ["h"]
    assert pipe.risk("bulk").risk == 0.0


def test_made_up_model_names_do_not_grow_memory_without_bound(config: Detectors) -> None:
    from distillguard.detectors import account_pipeline

    pipe = AccountPipeline(config)
    base = bulk_events("a", 1)[0]
    for i in range(account_pipeline.MAX_MODELS + 50):
        pipe.process(msgspec.structs.replace(base, model=f"model-{i}", event_id=str(i)))
    assert len(pipe._model_first_seen) == account_pipeline.MAX_MODELS


def test_linkage_parameters_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISTILLGUARD_DETECTORS__LINKAGE__LINK_THRESHOLD", "2.0")
    pipeline = build_pipeline(Settings())
    assert pipeline.linkage.config.link_threshold == 2.0  # type: ignore[attr-defined]
