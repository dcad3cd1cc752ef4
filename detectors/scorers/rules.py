"""Expert rules: what trust-and-safety knows distillation looks like, as a scorecard.

Each rule turns one signal into a suspicion in [0, 1] with a linear ramp between two
thresholds (``low`` = no suspicion, ``high`` = full; ``low > high`` ramps the other
way, for signals whose *low* values are suspicious such as timing regularity). A
rule belongs to a group: *extraction* (what is taken: reasoning traces, logprobs,
capability sweeps, templates), *scale* (how much and how persistently) and
*automation* (scripted clients, no think time, proxy rotation, 429 hammering).

No single group is distillation: research groups elicit reasoning (extraction
without scale), batch jobs are huge and scripted (scale and automation without
extraction). Hence the *interactions*: the product of two groups' evidence adds to
the log-odds, so extraction at scale scores far above either alone. Thresholds and
weights live in ``configs/default.yaml`` (``detectors.rules``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    """One signal's ramp into the scorecard."""

    signal: str
    low: float
    high: float
    weight: float
    group: str

    def suspicion(self, value: float) -> float:
        """0 at ``low``, 1 at ``high``, linear between, clipped.

        >>> Rule("x", 0.0, 0.8, 1.0, "g").suspicion(0.4)
        0.5
        >>> Rule("std", 0.5, 0.1, 1.0, "g").suspicion(0.05)
        1.0
        """
        s = (value - self.low) / (self.high - self.low)
        return 0.0 if s <= 0.0 else 1.0 if s >= 1.0 else s


class ExpertRules:
    """Log-odds scorecard over named signals, with group interactions.

    ``logit(x) = bias + sum_r weight_r * suspicion_r(x) + sum_(g,h) w_gh * G_g * G_h``
    where ``G_g`` is the weighted suspicion of group ``g``. Rules do not learn;
    ``learn_one`` exists for the shared detector interface.

    Parameters
    ----------
    rules
        The rules; a signal missing from ``x`` contributes nothing.
    interactions
        ``(group, group, weight)`` triples.
    bias
        Log-odds with no evidence at all.

    Examples
    --------
    >>> rules = ExpertRules(
    ...     [Rule("cot_elicitation_rate", 0.1, 0.6, 1.0, "extraction"),
    ...      Rule("requests_per_hour", 30, 300, 1.0, "scale")],
    ...     interactions=[("extraction", "scale", 4.0)], bias=-4.0)
    >>> round(rules.score_one({"cot_elicitation_rate": 0.9, "requests_per_hour": 5}), 3)
    0.047
    >>> round(rules.score_one({"cot_elicitation_rate": 0.9, "requests_per_hour": 900}), 3)
    0.881
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        interactions: Sequence[tuple[str, str, float]] = (),
        bias: float = -4.0,
    ) -> None:
        self.rules = tuple(rules)
        self.interactions = tuple(interactions)
        self.bias = bias

    def learn_one(self, x: dict[str, float]) -> None:
        """Rules are fixed by configuration; nothing to learn."""

    def explain(self, x: dict[str, float]) -> tuple[float, dict[str, float]]:
        """Log-odds, and each signal's share of it (interaction terms split by weight)."""
        logit, parts, _ = self.explain_own(x)
        return logit, parts

    def explain_own(self, x: dict[str, float]) -> tuple[float, dict[str, float], dict[str, float]]:
        """:meth:`explain`, plus each signal's own log-odds (interactions not included).

        The own contributions are what other stages reuse: the linkage stage asks
        whether a cluster's members *extract* (long answers, logprobs, capability
        sweeps, net of exculpatory signals), which the fused risk cannot say: scale and
        automation raise it too, and in a templated cluster the template is
        coordination evidence already.

        >>> rules = ExpertRules([Rule("a", 0.0, 1.0, 2.0, "extraction"),
        ...                      Rule("b", 0.0, 1.0, -1.0, "benign")],
        ...                     interactions=[("extraction", "benign", 1.0)])
        >>> rules.explain_own({"a": 0.5, "b": 1.0})[2]
        {'a': 1.0, 'b': -1.0}
        """
        groups: dict[str, float] = {}
        parts: dict[str, float] = {}
        for rule in self.rules:
            value = x.get(rule.signal)
            if value is None:
                continue
            c = rule.weight * rule.suspicion(value)
            if c:
                parts[rule.signal] = parts.get(rule.signal, 0.0) + c
                groups[rule.group] = groups.get(rule.group, 0.0) + c
        logit = self.bias + sum(parts.values())
        base = dict(parts)
        for g, h, w in self.interactions:
            gv, hv = groups.get(g, 0.0), groups.get(h, 0.0)
            term = w * gv * hv
            if term:
                logit += term
                # credit the interaction to the signals behind it, in proportion
                for rule in self.rules:
                    if rule.group in (g, h) and rule.signal in base:
                        total = gv if rule.group == g else hv
                        own = rule.weight * rule.suspicion(x[rule.signal])
                        parts[rule.signal] += 0.5 * term * own / total
        return logit, parts, base

    def logit(self, x: dict[str, float]) -> float:
        return self.explain(x)[0]

    def score_one(self, x: dict[str, float]) -> float:
        return _sigmoid(self.logit(x))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
