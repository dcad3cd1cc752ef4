"""What each scorer is for: population placement, joint anomalies, rules, analyst labels."""

from __future__ import annotations

import random

import pytest

from distillguard.detectors.scorers import (
    ExpertRules,
    LabelFeedback,
    PopulationAnomaly,
    PopulationQuantiles,
    Rule,
)


def test_percentiles_place_values_in_the_population() -> None:
    pop = PopulationQuantiles()
    rng = random.Random(0)
    for _ in range(5000):
        pop.learn_one({"requests_per_hour": rng.lognormvariate(2.0, 1.0)})
    median = pop.percentile("requests_per_hour", 7.39)  # e^2: the true median
    assert median is not None and 45 < median < 55
    assert pop.percentile("requests_per_hour", 5000.0) > 99.9  # type: ignore[operator]
    assert pop.percentile("requests_per_hour", 0.0) < 1  # type: ignore[operator]


def test_population_forgets_old_traffic() -> None:
    pop = PopulationQuantiles(max_weight=1000.0)
    for _ in range(1000):
        pop.learn_one({"cot_elicitation_rate": 0.1})
    for _ in range(4000):
        pop.learn_one({"cot_elicitation_rate": 0.9})
    # after the shift, 0.5 sits below almost everyone
    assert pop.percentile("cot_elicitation_rate", 0.5) < 10  # type: ignore[operator]
    assert pop.observed("cot_elicitation_rate") < 1000


def test_population_ignores_non_finite_values() -> None:
    pop = PopulationQuantiles()
    pop.learn_one({"duty_cycle": float("nan")})
    assert pop.percentile("duty_cycle", 0.5) is None
    pop.learn_one({"duty_cycle": 0.4})
    assert pop.percentile("duty_cycle", float("inf")) is None


def test_population_state_of_the_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError):
        PopulationQuantiles.from_state(
            {"max_weight": 10.0, "counts": {"duty_cycle": [1.0, 2.0]}, "totals": {}}
        )


def test_anomaly_model_scores_a_joint_outlier_above_the_crowd() -> None:
    model = PopulationAnomaly(window_size=100, seed=1)
    rng = random.Random(1)
    for _ in range(400):
        u = rng.uniform(0.2, 0.8)
        model.learn_one({"a": u, "b": u + rng.uniform(-0.05, 0.05)})
    typical = model.score_one({"a": 0.5, "b": 0.5})
    off_diagonal = model.score_one({"a": 0.9, "b": 0.1})  # each value ordinary, the pair is not
    assert off_diagonal > typical


def test_anomaly_state_rejects_truncated_trees() -> None:
    model = PopulationAnomaly(n_trees=2, height=3, window_size=10)
    for i in range(30):
        model.learn_one({"a": (i % 10) / 10})
    state = model.to_state()
    state.trees[0] = state.trees[0][:-1]
    with pytest.raises(ValueError):
        PopulationAnomaly.from_state(state)


def test_rules_ramp_both_ways_and_interact() -> None:
    rules = ExpertRules(
        [
            Rule("cot_elicitation_rate", 0.1, 0.5, 1.0, "extraction"),
            Rule("requests_per_hour_6h", 10.0, 100.0, 1.0, "scale"),
            Rule("interarrival_log_std", 1.0, 0.2, 1.0, "automation"),
        ],
        interactions=[("extraction", "scale", 3.0)],
        bias=-4.0,
    )
    research = {
        "cot_elicitation_rate": 0.9,
        "requests_per_hour_6h": 2.0,
        "interarrival_log_std": 1.5,
    }
    batch = {
        "cot_elicitation_rate": 0.0,
        "requests_per_hour_6h": 900.0,
        "interarrival_log_std": 0.1,
    }
    distiller = {
        "cot_elicitation_rate": 0.9,
        "requests_per_hour_6h": 900.0,
        "interarrival_log_std": 0.1,
    }
    assert rules.score_one(research) < 0.1
    assert rules.score_one(batch) < 0.2
    assert rules.score_one(distiller) > 0.85
    logit, parts = rules.explain(distiller)
    assert logit == pytest.approx(-4.0 + sum(parts.values()))
    assert set(parts) == {"cot_elicitation_rate", "requests_per_hour_6h", "interarrival_log_std"}


def test_rules_skip_missing_signals() -> None:
    rules = ExpertRules([Rule("logprobs_rate", 0.0, 1.0, 2.0, "extraction")], bias=-1.0)
    assert rules.logit({}) == -1.0
    assert rules.logit({"logprobs_rate": 1.0}) == 1.0


def test_negative_rules_are_exculpatory() -> None:
    rules = ExpertRules([Rule("duplicate_prompt_rate", 0.05, 0.3, -2.0, "benign")], bias=0.0)
    assert rules.logit({"duplicate_prompt_rate": 0.5}) == -2.0


RESEARCH = {
    "cot_elicitation_rate": 0.8,
    "requests_per_hour_6h": 4.0,
    "duty_cycle": 0.2,
    "multi_completion_rate": 0.4,
    "large_max_tokens_rate": 1.0,
}
BULK = {
    "cot_elicitation_rate": 0.9,
    "requests_per_hour_6h": 1000.0,
    "duty_cycle": 1.0,
    "interarrival_log_std": 0.05,
    "scripted_client_rate": 1.0,
    "hour_flatness": 0.99,
    "large_max_tokens_rate": 1.0,
    "output_tokens_per_hour": 2e6,
}


def jitter(x: dict[str, float], rng: random.Random) -> dict[str, float]:
    return {k: v * rng.uniform(0.9, 1.1) for k, v in x.items()}


def test_dismissals_lower_lookalikes_only() -> None:
    fb = LabelFeedback()
    rng = random.Random(7)
    for _ in range(20):
        fb.learn_one(jitter(RESEARCH, rng), False)
    assert fb.score_one(jitter(RESEARCH, rng)) < -2.0
    assert fb.score_one(BULK) == pytest.approx(0.0, abs=0.05)
    assert fb.labels_seen() == (20, 0)


def test_confirmations_raise_lookalikes_and_adjustment_is_bounded() -> None:
    # confirmations may add up to confirmed_max (a missed campaign scores far below
    # the threshold), dismissals subtract at most max_adjustment
    fb = LabelFeedback(max_adjustment=2.5, confirmed_max=3.5)
    rng = random.Random(8)
    for _ in range(30):
        fb.learn_one(jitter(BULK, rng), True)
    assert 3.0 < fb.score_one(jitter(BULK, rng)) <= 3.5
    for _ in range(60):
        fb.learn_one(jitter(RESEARCH, rng), False)
    assert -2.5 <= fb.score_one(jitter(RESEARCH, rng)) < -2.0


def test_logistic_regression_joins_once_both_classes_have_labels() -> None:
    fb = LabelFeedback(bandwidth=1e-6, min_per_class=5)  # kernels off: only the LR speaks
    rng = random.Random(9)
    for _ in range(4):
        fb.learn_one(jitter(RESEARCH, rng), False)
        fb.learn_one(jitter(BULK, rng), True)
    assert fb.score_one(BULK) == 0.0  # not trusted yet
    for _ in range(40):
        fb.learn_one(jitter(RESEARCH, rng), False)
        fb.learn_one(jitter(BULK, rng), True)
    assert fb.score_one(BULK) > 0.5
    assert fb.score_one(RESEARCH) < -0.5


def test_feedback_state_rejects_rows_of_the_wrong_width() -> None:
    fb = LabelFeedback()
    fb.learn_one(RESEARCH, False)
    state = fb.to_state()
    state.benign[0] = [0.1, 0.2]
    with pytest.raises(ValueError):
        LabelFeedback.from_state(state)
