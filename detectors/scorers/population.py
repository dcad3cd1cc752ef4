"""Where an account's signal values sit in the population of accounts.

An analyst reading "cot_elicitation_rate 0.81" needs to know whether that is
unusual; "99.9th percentile of accounts" answers it. River's quantile estimators
give the value at a fixed quantile, not the quantile of a value, and cost one
estimator per (signal, level); a fixed-grid histogram per signal gives the
percentile of any value with one ``bisect`` and forgets old traffic by halving.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from distillguard.detectors.features.signals import BY_NAME
from distillguard.detectors.state import QuantilesState, as_state

#: Share signals live in [0, 1]: 1% bins. Magnitudes span 1e-3..1e7: 8 bins a decade.
_SHARE_EDGES: tuple[float, ...] = tuple(i / 100.0 for i in range(1, 101))
_MAGNITUDE_EDGES: tuple[float, ...] = tuple(10.0 ** (k / 8.0) for k in range(-24, 57))


def _edges_for(signal: str) -> tuple[float, ...]:
    spec = BY_NAME.get(signal)
    return _SHARE_EDGES if spec is not None and spec.kind == "share" else _MAGNITUDE_EDGES


class PopulationQuantiles:
    """Streaming per-signal histograms over accounts: value -> population percentile.

    Feed one observation per account *per cadence* (not per event), or high-volume
    accounts would stand for the population.

    Parameters
    ----------
    max_weight
        When a signal's total weight reaches this, its counts are halved: the
        population forgets old observations geometrically.

    Examples
    --------
    >>> pop = PopulationQuantiles()
    >>> for i in range(1000):
    ...     pop.learn_one({"cot_elicitation_rate": (i % 100) / 100.0})
    >>> round(pop.percentile("cot_elicitation_rate", 0.95), 1)
    95.0
    >>> pop.percentile("cot_elicitation_rate", 1.0)
    100.0
    >>> pop.percentile("never_seen", 3.0) is None
    True
    >>> round(pop.score_one({"cot_elicitation_rate": 0.99}), 3)
    0.99
    """

    def __init__(self, max_weight: float = 50_000.0) -> None:
        self.max_weight = max_weight
        self._counts: dict[str, list[float]] = {}
        self._totals: dict[str, float] = {}

    def learn_one(self, x: dict[str, float]) -> None:
        for name, value in x.items():
            counts = self._counts.get(name)
            if counts is None:
                counts = self._counts[name] = [0.0] * (len(_edges_for(name)) + 1)
                self._totals[name] = 0.0
            if not math.isfinite(value):
                continue
            counts[bisect_right(_edges_for(name), value)] += 1.0
            total = self._totals[name] + 1.0
            if total >= self.max_weight:
                for i in range(len(counts)):
                    counts[i] *= 0.5
                total *= 0.5
            self._totals[name] = total

    def percentile(self, signal: str, value: float) -> float | None:
        """Percent of observations below ``value`` (interpolated in its bin); None if unseen."""
        counts = self._counts.get(signal)
        total = self._totals.get(signal, 0.0)
        if counts is None or total <= 0.0 or not math.isfinite(value):
            return None
        edges = _edges_for(signal)
        i = bisect_right(edges, value)
        below = sum(counts[:i])
        # interpolate inside the bin (half of it for the open-ended end bins)
        inner = 0 < i < len(edges)
        frac = (value - edges[i - 1]) / (edges[i] - edges[i - 1]) if inner else 0.5
        return min(100.0, 100.0 * (below + frac * counts[i]) / total)

    def percentiles(self, x: dict[str, float]) -> dict[str, float]:
        """Percentile of every known signal in ``x`` (unknown ones are left out)."""
        out = {}
        for name, value in x.items():
            p = self.percentile(name, value)
            if p is not None:
                out[name] = p
        return out

    def score_one(self, x: dict[str, float]) -> float:
        """How far into a suspicious tail the most extreme signal is, in [0, 1]."""
        best = 0.0
        for name, p in self.percentiles(x).items():
            spec = BY_NAME.get(name)
            tail = p if spec is None or spec.higher_is_suspicious else 100.0 - p
            best = max(best, tail / 100.0)
        return best

    def observed(self, signal: str) -> float:
        return self._totals.get(signal, 0.0)

    def signals(self) -> Iterable[str]:
        return self._counts.keys()

    # -- state ------------------------------------------------------------------------

    def to_state(self) -> QuantilesState:
        return QuantilesState(
            max_weight=self.max_weight,
            counts={name: list(c) for name, c in self._counts.items()},
            totals=dict(self._totals),
        )

    @classmethod
    def from_state(cls, state: QuantilesState | dict[str, Any]) -> PopulationQuantiles:
        """Inverse of :meth:`to_state` (or its plain msgpack form); ValueError on wrong shapes."""
        state = as_state(state, QuantilesState)
        pop = cls(max_weight=state.max_weight)
        for name, values in state.counts.items():
            if len(values) != len(_edges_for(name)) + 1:
                raise ValueError(f"population histogram for {name!r} has the wrong shape")
            pop._counts[name] = list(values)
            pop._totals[name] = state.totals.get(name, sum(values))
        return pop
