"""Regime signals on synthetic per-account streams: a change over time inside one
account (warm-up then harvest), a daily quota, and benchmark runs that never repeat."""

from __future__ import annotations

import random

from distillguard.detectors.features.account import AccountState
from distillguard.events import RequestEvent

DAY = 86_400.0
HOUR = 3600.0
T0 = 1_795_132_800.0  # a UTC midnight


def _event(i: int, ts: float, prompt: str, temperature: float | None = None) -> RequestEvent:
    return RequestEvent(
        event_id=str(i),
        ts=ts,
        account_id="a",
        model="m",
        input_tokens=40,
        output_tokens=600,
        status=200,
        temperature=temperature,
        prompt=prompt,
    )


def _feed(
    state: AccountState,
    times: list[float],
    *,
    prompts: list[str] | None = None,
    temperature: float | None = None,
) -> None:
    for i, ts in enumerate(sorted(times)):
        prompt = prompts[i] if prompts is not None else f"question {state.n} about item {i}?"
        state.update(_event(state.n, ts, prompt, temperature), ts=ts)


def _evenings(rng: random.Random, start_day: int, days: int, per_day: int) -> list[float]:
    """A person's evening sessions: ``per_day`` requests between 19:00 and 22:00."""
    return [
        T0 + (start_day + d) * DAY + 19 * HOUR + rng.uniform(0, 3 * HOUR)
        for d in range(days)
        for _ in range(per_day)
    ]


def test_warmup_then_harvest_rises_after_the_switch_and_not_before() -> None:
    rng = random.Random(1)
    state = AccountState()
    _feed(state, _evenings(rng, 0, 3, 8))
    switch = T0 + 3 * DAY
    before = state.features(switch)
    assert before["duty_cycle_rise"] < 0.1
    assert before["recent_duty_cycle"] <= 0.2
    # around the clock, ~12 an hour, for a day
    harvest = sorted(switch + rng.uniform(0, DAY) for _ in range(300))
    _feed(state, harvest[:30])
    early = state.features(harvest[29])
    assert early["duty_cycle_rise"] < 0.3  # three hours in: not yet a regime
    _feed(state, harvest[30:])
    after = state.features(switch + DAY)
    assert after["recent_duty_cycle"] >= 0.95
    assert after["duty_cycle_rise"] >= 0.7


def test_a_busier_honest_person_does_not_rise_like_a_harvester() -> None:
    """A new job: office hours every day, far more requests, but nights are empty."""
    rng = random.Random(2)
    state = AccountState()
    _feed(state, _evenings(rng, 0, 3, 5))
    office = [
        T0 + d * DAY + 8 * HOUR + rng.uniform(0, 11 * HOUR) for d in range(3, 5) for _ in range(80)
    ]
    _feed(state, office)
    f = state.features(T0 + 5 * DAY)
    assert f["duty_cycle_rise"] < 0.45
    # an always-on service never rose: it was on from its first day
    always = AccountState()
    _feed(always, [T0 + k * 600.0 for k in range(6 * 144)])
    assert always.features(T0 + 6 * DAY)["recent_duty_cycle"] >= 0.95
    assert always.features(T0 + 6 * DAY)["duty_cycle_rise"] < 0.05


def _sessions(rng: random.Random, day: int, count: int) -> list[float]:
    """``count`` requests in sessions during one day's waking hours."""
    out: list[float] = []
    while len(out) < count:
        t = T0 + day * DAY + 8 * HOUR + rng.uniform(0, 14 * HOUR)
        for _ in range(min(8, count - len(out))):
            t += rng.lognormvariate(3.5, 0.8)
            out.append(t)
    return out


def test_a_daily_quota_is_regular_where_a_coding_assistant_is_not() -> None:
    rng = random.Random(3)
    quota = AccountState()
    for day in range(4):
        _feed(quota, _sessions(rng, day, 155 + rng.randint(-4, 4)))
    # ~2.5 requests of spread a day where chance alone gives ~12
    assert quota.features(T0 + 4 * DAY)["daily_volume_dispersion"] < 0.4
    # not before three whole days: with two the signal stays neutral
    young = AccountState()
    for day in range(2):
        _feed(young, _sessions(rng, day, 155))
    assert young.features(T0 + 2 * DAY)["daily_volume_dispersion"] == 1.0
    # a steady coding assistant: the same habits every day, volumes that still vary
    coding = AccountState()
    for day, count in enumerate([140, 95, 180, 120, 160]):
        _feed(coding, _sessions(rng, day, count))
    assert coding.features(T0 + 5 * DAY)["daily_volume_dispersion"] > 1.0
    # a nightly benchmark is the same count every night too, but at run pace: not read
    nightly = AccountState()
    items = [f"item {k}" for k in range(300)]
    for day in range(4):
        _feed(nightly, [T0 + day * DAY + HOUR + 0.5 * k for k in range(300)], prompts=items)
    assert nightly.features(T0 + 4 * DAY)["daily_volume_dispersion"] == 1.0
    # a light user's days vary by chance: never read, whatever they are
    light = AccountState()
    for day in range(5):
        _feed(light, _sessions(rng, day, 20))
    assert light.features(T0 + 5 * DAY)["daily_volume_dispersion"] == 1.0


def _run(day: int, items: list[str]) -> list[float]:
    """A benchmark harness: one burst a day, 0.6 s apart, at 02:00."""
    return [T0 + day * DAY + 2 * HOUR + 0.6 * k for k in range(len(items))]


def test_a_benchmark_rerun_repeats_where_the_mimic_never_does() -> None:
    bench = [f"Question: what is {k} times {k + 7}? Let's think step by step." for k in range(400)]
    rerun = AccountState()
    for day in range(3):
        _feed(rerun, _run(day, bench), prompts=bench, temperature=0.0)
    mimic = AccountState()
    for day in range(3):
        fresh = [f"Question: item {day}-{k}: explain topic {k * 31 + day}." for k in range(400)]
        first = mimic.features(T0 + day * DAY)
        _feed(mimic, _run(day, fresh), prompts=fresh, temperature=0.0)
        if day == 0:
            # one run is what any evaluation's first night looks like
            assert mimic.features(T0 + DAY)["novel_rerun_rate"] == 0.0
    assert first["novel_rerun_rate"] >= 0.0
    assert mimic.features(T0 + 3 * DAY)["novel_rerun_rate"] >= 0.8
    assert rerun.features(T0 + 3 * DAY)["novel_rerun_rate"] < 0.3
    # the same fresh prompts at a person's pace are not runs: the signal stays 0
    person = AccountState()
    for day in range(3):
        prompts = [f"my own question {day}-{k} about topic {k * 17}" for k in range(100)]
        times = [T0 + day * DAY + 9 * HOUR + 90.0 * k for k in range(100)]
        _feed(person, times, prompts=prompts, temperature=0.0)
    assert person.features(T0 + 3 * DAY)["novel_rerun_rate"] == 0.0


def test_regime_state_survives_a_checkpoint() -> None:
    rng = random.Random(4)
    state = AccountState()
    _feed(state, _evenings(rng, 0, 2, 6))
    _feed(state, [T0 + 2 * DAY + k * 300.0 for k in range(300)])
    restored = AccountState.from_state(state.to_state())
    now = T0 + 3 * DAY + 600.0
    assert restored.features(now) == state.features(now)
    assert state.features(now)["duty_cycle_rise"] > 0.5
    # and it keeps counting days the same way
    more = [T0 + 3 * DAY + k * 300.0 for k in range(100)]
    _feed(state, more)
    _feed(restored, more)
    assert restored.features(T0 + 4 * DAY) == state.features(T0 + 4 * DAY)


def test_the_pipeline_alerts_a_warmed_up_harvester_after_its_switch_with_the_reason() -> None:
    from distillguard.detectors.account_pipeline import AccountPipeline
    from distillguard.settings import get_settings

    rng = random.Random(5)
    pipe = AccountPipeline(get_settings().detectors)
    switch = T0 + 3 * DAY
    warm = _evenings(rng, 0, 3, 8)
    harvest = sorted(switch + rng.uniform(0, 1.5 * DAY) for _ in range(450))
    alerts = []
    for i, ts in enumerate(warm + harvest):
        harvesting = ts >= switch
        prompt = (
            f"Problem {i}: prove the claim about sequence {i * 7}. Think step by step "
            "and explain each step."
            if harvesting
            else f"what should I cook tonight with {i % 5} eggs and some rice?"
        )
        raised = pipe.process(
            RequestEvent(
                event_id=str(i),
                ts=ts,
                account_id="warm",
                model="m",
                input_tokens=30,
                output_tokens=1500 if harvesting else 300,
                status=200,
                max_tokens=8192 if harvesting else 2048,
                temperature=0.0 if harvesting else 0.7,
                prompt=prompt,
            )
        )
        if raised:
            alerts += [(ts, a) for a in pipe.drain().alerts]
    assert alerts, "the harvester was never alerted"
    first_ts, first = alerts[0]
    assert first_ts > switch
    assert "duty_cycle_rise" in {r.signal for r in first.reasons}
