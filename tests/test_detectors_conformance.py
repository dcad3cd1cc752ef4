"""One suite over every detector class (like river's ``test_estimators.py``).

Each detector must: score before any learning, leave its input alone, accept
features it has not seen before, survive a save/load through msgpack (the
checkpoint format) with identical scores and identical learning afterwards, and
store its constructor parameters unchanged.
"""

from __future__ import annotations

import copy
import inspect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from distillguard.detectors.scorers import (
    ExpertRules,
    LabelFeedback,
    PopulationAnomaly,
    PopulationQuantiles,
    Rule,
)


@dataclass
class Case:
    name: str
    make: Callable[[], Any]
    supervised: bool = False

    def learn(self, model: Any, x: dict[str, float], i: int) -> None:
        if self.supervised:
            model.learn_one(x, i % 3 == 0)
        else:
            model.learn_one(x)


CASES = [
    Case("population_quantiles", lambda: PopulationQuantiles(max_weight=100.0)),
    Case("population_anomaly", lambda: PopulationAnomaly(n_trees=4, height=4, window_size=20)),
    Case(
        "expert_rules",
        lambda: ExpertRules(
            [
                Rule("cot_elicitation_rate", 0.1, 0.6, 1.0, "extraction"),
                Rule("requests_per_hour", 10.0, 100.0, 1.0, "scale"),
                Rule("interarrival_log_std", 1.0, 0.3, 0.5, "automation"),
            ],
            interactions=[("extraction", "scale", 1.0)],
            bias=-3.0,
        ),
    ),
    Case("label_feedback", lambda: LabelFeedback(min_per_class=2), supervised=True),
]


def sample(rng: random.Random, extra: bool = False) -> dict[str, float]:
    x = {
        "cot_elicitation_rate": rng.random(),
        "requests_per_hour": rng.uniform(0, 200),
        "interarrival_log_std": rng.uniform(0, 2),
    }
    if extra:
        x["brand_new_signal"] = rng.random()
        x["duty_cycle"] = rng.random()
    return x


def state_of(model: Any) -> Any:
    """Through msgpack and back, as a checkpoint would travel."""
    if not hasattr(model, "to_state"):
        return None
    return msgspec.msgpack.decode(msgspec.msgpack.encode(model.to_state()))


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def test_score_before_learning(case: Case) -> None:
    score = case.make().score_one(sample(random.Random(0)))
    assert isinstance(score, float)
    assert math.isfinite(score)


def test_input_is_not_mutated(case: Case) -> None:
    model = case.make()
    rng = random.Random(1)
    for i in range(60):
        x = sample(rng)
        before = copy.deepcopy(x)
        case.learn(model, x, i)
        model.score_one(x)
        assert x == before


def test_new_features_may_appear(case: Case) -> None:
    model = case.make()
    rng = random.Random(2)
    for i in range(40):
        case.learn(model, sample(rng), i)
    for i in range(40):
        x = sample(rng, extra=True)
        case.learn(model, x, i)
        assert math.isfinite(model.score_one(x))
    # and features may disappear again
    assert math.isfinite(model.score_one({"requests_per_hour": 5.0}))


def test_state_round_trips(case: Case) -> None:
    model = case.make()
    rng = random.Random(3)
    for i in range(80):
        case.learn(model, sample(rng), i)
    saved = state_of(model)
    if saved is None:  # stateless by design
        assert not hasattr(model, "from_state")
        return
    clone = type(model).from_state(saved)
    probes = [sample(random.Random(100 + k), extra=k % 2 == 0) for k in range(10)]
    assert [clone.score_one(x) for x in probes] == [model.score_one(x) for x in probes]
    for i in range(30):  # and both keep learning identically
        x = sample(rng)
        case.learn(model, x, i)
        case.learn(clone, x, i)
    assert [clone.score_one(x) for x in probes] == [model.score_one(x) for x in probes]


def test_init_stores_parameters(case: Case) -> None:
    model = case.make()
    for name in inspect.signature(type(model).__init__).parameters:
        if name == "self":
            continue
        assert hasattr(model, name), f"{type(model).__name__} does not keep {name!r}"


def test_scores_are_deterministic(case: Case) -> None:
    a, b = case.make(), case.make()
    rng_a, rng_b = random.Random(4), random.Random(4)
    for i in range(60):
        case.learn(a, sample(rng_a), i)
        case.learn(b, sample(rng_b), i)
    probe = sample(random.Random(9))
    assert a.score_one(probe) == b.score_one(probe)
