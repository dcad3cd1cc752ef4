"""Every account signal on crafted event sequences: the value moves the way it should."""

from __future__ import annotations

import math
import random

import msgspec
import pytest

from distillguard.detectors.features import SIGNAL_NAMES, AccountState
from distillguard.detectors.features import text as prompt_text
from distillguard.events import RequestEvent

T0 = 1_790_000_000.0


def ev(i: int, ts: float, **fields: object) -> RequestEvent:
    base: dict[str, object] = {
        "event_id": f"e{i}",
        "ts": ts,
        "account_id": "a",
        "model": "m",
        "input_tokens": 100,
        "output_tokens": 200,
        "status": 200,
    }
    base.update(fields)
    return RequestEvent(**base)  # type: ignore[arg-type]


def run(times: list[float], **fields: object) -> AccountState:
    state = AccountState()
    for i, ts in enumerate(times):
        per_event = {k: (v(i) if callable(v) else v) for k, v in fields.items()}
        state.update(ev(i, ts, **per_event))
    return state


def regular(n: int, gap: float, start: float = T0) -> list[float]:
    return [start + gap * i for i in range(n)]


def poisson(n: int, mean_gap: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    ts, out = T0, []
    for _ in range(n):
        ts += rng.expovariate(1.0 / mean_gap)
        out.append(ts)
    return out


def features(state: AccountState) -> dict[str, float]:
    return state.features(state.last_ts)


def test_every_named_signal_is_computed_and_finite() -> None:
    f = features(run(regular(50, 3.0), prompt=lambda i: f"question {i}?"))
    assert list(f) == list(SIGNAL_NAMES)
    assert all(math.isfinite(v) for v in f.values())


def test_volume_rate_reflects_sustained_traffic_not_a_short_burst() -> None:
    steady = features(run(regular(2000, 3.6)))  # 1,000 an hour for 2 hours
    burst = features(run(regular(200, 0.25)))  # 200 requests in 50 seconds
    assert 800 < steady["requests_per_hour"] < 1200
    assert 600 < steady["requests_per_hour_6h"] < 1100
    # a 50-second burst is measured over at least the floor window, not extrapolated
    assert burst["requests_per_hour"] <= 200 * 3600 / 600 + 1
    assert burst["requests_per_hour_6h"] <= 201


def test_rates_decay_while_the_account_is_idle() -> None:
    state = run(regular(500, 3.6))
    busy = state.features(state.last_ts)["requests_per_hour"]
    later = state.features(state.last_ts + 3 * 3600)["requests_per_hour"]
    assert later < busy / 100


def test_output_tokens_per_hour_counts_output() -> None:
    f = features(run(regular(1000, 3.6), output_tokens=3000))
    assert 1.5e6 < f["output_tokens_per_hour"] < 3.5e6


def test_persistence_signals_need_history_and_separate_24_7_from_office_hours() -> None:
    round_the_clock = features(run(regular(3 * 24 * 12, 300.0)))  # every 5 min for 3 days
    office: list[float] = []
    for day in range(3):
        office += [T0 + day * 86_400 + 9 * 3600 + 300 * k for k in range(8 * 12)]
    office_hours = features(run(office))
    young = features(run(regular(20, 60.0)))
    assert round_the_clock["duty_cycle"] > 0.9
    assert office_hours["duty_cycle"] < 0.5
    assert round_the_clock["hour_flatness"] > 0.95
    assert office_hours["hour_flatness"] < 0.7
    assert young["hour_flatness"] < 0.05  # shrunk: no day observed yet
    assert 0.3 < young["duty_cycle"] < 0.6  # the neutral prior, not "always on"
    assert round_the_clock["active_span_hours"] == pytest.approx(72, abs=0.2)


def test_interarrival_regularity_separates_scripts_from_poisson_arrivals() -> None:
    metronome = features(run(regular(300, 2.0)))
    jittered = features(
        run([t + random.Random(i).uniform(-0.2, 0.2) for i, t in enumerate(regular(300, 2.0))])
    )
    people = features(run(poisson(300, 30.0)))
    assert metronome["interarrival_log_std"] < 0.01
    assert jittered["interarrival_log_std"] < 0.3
    assert 1.0 < people["interarrival_log_std"] < 1.6  # log of exponential gaps: ~1.28


def test_no_think_time_rate() -> None:
    assert features(run(regular(100, 1.0)))["no_think_time_rate"] > 0.95
    assert features(run(regular(100, 20.0)))["no_think_time_rate"] == 0.0


def test_cot_elicitation_rate_counts_reasoning_requests() -> None:
    f = features(
        run(
            regular(100, 5.0),
            prompt=lambda i: (
                f"Solve problem {i}. Think through this step by step."
                if i % 2
                else f"Capital of {i}?"
            ),
        )
    )
    assert 0.4 < f["cot_elicitation_rate"] < 0.6
    plain = features(run(regular(100, 5.0), prompt=lambda i: f"When did team {i} win?"))
    assert plain["cot_elicitation_rate"] == 0.0


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Let's think step by step.", True),
        ("Explain your reasoning, then give the final answer.", True),
        ("Grade this answer against the rubric.", True),
        ("First write your complete chain of thought inside <thinking></thinking> tags", True),
        ("Who wrote the song he ain't heavy he's my brother?", False),
        ("Translate into German: the step is steep.", False),
    ],
)
def test_reasoning_phrases(prompt: str, expected: bool) -> None:
    text = prompt.lower()
    assert prompt_text.elicits_reasoning(text, prompt_text.words_of(text)) is expected


def test_capability_share_and_topic_breadth() -> None:
    code = features(run(regular(60, 5.0), prompt=lambda i: f"Write a Python function #{i}."))
    trivia = features(run(regular(60, 5.0), prompt=lambda i: f"Who was the king in year {i}?"))
    sweep_prompts = [
        "Write a python script that parses logs",
        "Calculate the integral of x^2",
        "Solve this logic puzzle about knights",
        "Write a poem about the sea",
        "Use the calculator tool to add numbers",
        "Who won the world cup?",
    ]
    sweep = features(run(regular(60, 5.0), prompt=lambda i: sweep_prompts[i % 6]))
    assert code["capability_share"] > 0.95
    assert trivia["capability_share"] < 0.2
    assert sweep["topic_breadth"] > 0.9
    assert code["topic_breadth"] < 0.1


def test_template_repeat_rate_sees_skeletons_not_content() -> None:
    templated = features(
        run(
            regular(80, 5.0),
            prompt=lambda i: (
                f"### Instruction:\nImplement algorithm number {i} with edge case {i * 7}.\n\n"
                "### Response (explain each step):"
            ),
        )
    )
    vocabulary = [
        "sky",
        "pasta",
        "tall",
        "novel",
        "chile",
        "river",
        "piano",
        "tax",
        "cat",
        "moon",
        "code",
        "dream",
    ]

    def typed_prompt(i: int) -> str:  # people's prompts: no shared head or tail
        rng = random.Random(i)
        return " ".join(rng.choice(vocabulary) for _ in range(12)) + "?"

    typed = features(run(regular(80, 5.0), prompt=typed_prompt))
    assert templated["template_repeat_rate"] > 0.9
    assert typed["template_repeat_rate"] < 0.5
    assert templated["duplicate_prompt_rate"] == 0.0


def test_duplicate_prompt_rate_sees_exact_repeats() -> None:
    f = features(run(regular(80, 5.0), prompt=lambda i: f"Question {i % 2}: what is it?"))
    assert f["duplicate_prompt_rate"] > 0.9
    assert f["template_repeat_rate"] < 0.1  # duplicates are not counted as templating


def test_redacted_prompts_use_the_upstream_fingerprint() -> None:
    base = 0x0F0F_1234_ABCD_0000
    rng = random.Random(5)

    def near_fp(i: int) -> str:  # the template's hash with a few slot bits flipped
        return f"{base ^ (rng.getrandbits(64) & rng.getrandbits(64) & rng.getrandbits(64)):016x}"

    near = features(run(regular(60, 5.0), prompt_fingerprint=near_fp))
    far = features(
        run(regular(60, 5.0), prompt_fingerprint=lambda i: f"{rng.getrandbits(64):016x}")
    )
    assert near["template_repeat_rate"] > 0.8
    assert far["template_repeat_rate"] < 0.1


def test_harvesting_parameters() -> None:
    f = features(
        run(
            regular(100, 5.0),
            logprobs=True,
            top_logprobs=20,
            n=lambda i: 5 if i % 2 else 1,
            temperature=0.0,
            max_tokens=8192,
            input_tokens=50,
            output_tokens=1000,
        )
    )
    assert f["logprobs_rate"] == pytest.approx(1.0)
    assert f["top_logprobs_mean"] == pytest.approx(20.0)
    assert 0.4 < f["multi_completion_rate"] < 0.6
    assert f["temperature_zero_rate"] == pytest.approx(1.0)
    assert f["large_max_tokens_rate"] == pytest.approx(1.0)
    assert f["output_input_ratio"] > 20  # n=5 multiplies the output harvested
    plain = features(run(regular(100, 5.0), temperature=0.7, max_tokens=512))
    assert plain["logprobs_rate"] == plain["multi_completion_rate"] == 0.0
    assert plain["temperature_zero_rate"] == plain["large_max_tokens_rate"] == 0.0


def test_automation_fingerprints_user_agent_and_ip_rotation() -> None:
    script = features(
        run(
            regular(50, 5.0),
            user_agent="python-requests/2.31.0",
            ip=lambda i: f"203.0.113.{i % 40}",
        )
    )
    sdk = features(run(regular(50, 5.0), user_agent="anthropic-python/0.40.1", ip="198.51.100.7"))
    assert script["scripted_client_rate"] == pytest.approx(1.0)
    assert script["ip_change_rate"] > 0.9
    assert sdk["scripted_client_rate"] == 0.0
    assert sdk["ip_change_rate"] == 0.0


def test_rate_limit_hammering_and_fast_retries() -> None:
    statuses = [429 if i % 3 == 0 else 200 for i in range(120)]
    hammer = features(run(regular(120, 1.0), status=lambda i: statuses[i]))
    polite_times = []
    t = T0
    for i in range(120):
        t += 60.0 if statuses[i - 1] == 429 else 5.0
        polite_times.append(t)
    polite = features(run(polite_times, status=lambda i: statuses[i]))
    assert 0.25 < hammer["rate_limited_rate"] < 0.45
    assert hammer["fast_retry_rate"] > 0.95
    assert polite["fast_retry_rate"] == 0.0


def test_new_model_share_follows_the_callers_flag() -> None:
    state = AccountState()
    for i in range(100):
        state.update(ev(i, T0 + 10 * i), new_model=i >= 50)
    assert features(state)["new_model_share"] > 0.5


def test_late_events_do_not_rewind_the_clock() -> None:
    state = run(regular(10, 10.0))
    last = state.last_ts
    state.update(ev(99, last - 500.0))
    assert state.last_ts == last
    assert state.n == 11


def test_text_analysis_can_be_skipped() -> None:
    state = AccountState()
    for i in range(20):
        state.update(ev(i, T0 + i, prompt="Think step by step."), analyse_text=False)
    assert features(state)["cot_elicitation_rate"] == 0.0
    assert state.n == 20


def test_state_round_trips_through_plain_values() -> None:
    state = run(
        poisson(200, 10.0),
        prompt=lambda i: f"Write code {i}. Show your work.",
        user_agent="curl/8.4.0",
        ip=lambda i: f"10.0.0.{i % 3}",
    )
    copy = AccountState.from_state(state.to_state())
    assert copy.features(state.last_ts + 60) == state.features(state.last_ts + 60)
    nxt = ev(500, state.last_ts + 3.0, prompt="Write code 500. Show your work.")
    state.update(nxt)
    copy.update(nxt)
    assert copy.features(state.last_ts) == state.features(state.last_ts)


@pytest.mark.parametrize("bad", [[], [1, 2, 3], None])
def test_state_of_the_wrong_shape_is_rejected(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        AccountState.from_state(bad)  # type: ignore[arg-type]


def test_state_with_a_wrong_type_is_rejected() -> None:
    values = msgspec.to_builtins(AccountState().to_state())
    values["n"] = "not a number"
    with pytest.raises(ValueError):
        AccountState.from_state(values)


def test_burst_index_separates_steady_pipelines_from_bursts() -> None:
    steady = features(run(poisson(3000, 20.0)))  # ~17 hours of steady random traffic
    runs: list[float] = []
    for day in range(3):  # a benchmark run of 800 requests at ~4/s each day
        runs += [T0 + day * 86_400 + 0.25 * k for k in range(800)]
    bursts = features(run(runs))
    young = features(run(regular(30, 0.1)))
    assert 0.5 < steady["burst_index"] < 1.5
    assert bursts["burst_index"] > 20
    assert 0.5 < young["burst_index"] < 2.0  # one burst so far: no evidence either way


def test_repeated_content_rate_sees_benchmark_reruns_hours_apart() -> None:
    items = [f"Question {k}: a train leaves at {k} km/h; how far does it go?" for k in range(500)]
    rerun = run(
        [T0 + 0.25 * k for k in range(500)] + [T0 + 86_400 + 0.25 * k for k in range(500)],
        prompt=lambda i: items[i % 500],
    )
    fresh = run(regular(1000, 1.0), prompt=lambda i: f"Task {i}: implement feature {i * 7919}.")
    assert features(rerun)["repeated_content_rate"] > 0.8
    assert features(fresh)["repeated_content_rate"] < 0.1
