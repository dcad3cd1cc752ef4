"""Learning from analysts: confirmed and dismissed alerts move similar accounts' risk.

Two learners, because analysts' labels arrive few and one-sided at first (the first
twenty labels are usually dismissals of one noisy archetype):

- a *label memory* of labelled accounts' signal vectors (:func:`unit_vector`). An
  account close to dismissed ones is pulled down, close to confirmed ones pushed up,
  by a Gaussian kernel on the RMS distance. It works from the first label, needs no
  negatives to balance positives, and explains itself ("like 14 dismissed alerts");
- river's online :class:`~river.linear_model.LogisticRegression` on the same
  vectors, trusted only once both classes have enough labels to generalise from, each
  label weighted by the inverse of its class's share so far: dismissals outnumber
  confirmations many times over, and an unweighted model learns "everything is benign".

A confirmed label lifts its neighbours only as far as its neighbourhood is its own.
A ring of recent population vectors gives the density of ordinary accounts around an
account; the lift grows with the ratio of the confirmed density to that (plus the
dismissed density). Five confirmed members of a campaign that looks like hobbyists
would otherwise lift every hobbyist; members of a campaign whose behaviour sets it
apart from the population are lifted past the alert threshold (the confirmed side
may add up to ``confirmed_max``, more than ``max_adjustment``: such a campaign's
members scored far below the threshold, which is why an analyst had to find them).

Vectors use a fixed transform (shares as they are, magnitudes on a log scale), not
population percentiles: a label must mean the same thing after the population has
drifted, and a freshly started pipeline can learn labels before it has seen traffic.

Both give a log-odds *adjustment* added to the expert and anomaly evidence, bounded
by ``max_adjustment`` so a handful of labels cannot silence a blatant extractor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from river import linear_model, optim, utils

from distillguard.detectors.features.signals import MODEL_SIGNAL_NAMES, unit_vector
from distillguard.detectors.state import FeedbackState, LogisticState, as_state


class LabelFeedback:
    """Log-odds adjustment from analysts' labels.

    Parameters
    ----------
    bandwidth
        RMS distance between :func:`unit_vector` s at which a label's pull falls
        to ``exp(-1/2)``. One share signal moved from 0 to 0.5 is 0.1 away.
    strength
        Log-odds per unit of kernel mass (saturating with ``tanh``).
    max_adjustment
        Bound on the total adjustment in either direction.
    capacity
        Labels remembered per class (oldest forgotten first).
    min_per_class
        Labels of *each* class before the logistic regression is trusted.
    population_capacity
        Recent population vectors kept (:meth:`observe_one`); 0 keeps none, and a
        confirmed label then lifts its neighbours whatever the population looks like.
    confirmed_max
        Bound on what confirmed labels add.
    ratio_from, ratio_full
        Density ratio (confirmed over population and dismissed) from which confirmed
        labels lift a neighbour at all, and at which they lift it fully.

    Examples
    --------
    >>> fb = LabelFeedback()
    >>> research = {"cot_elicitation_rate": 0.95, "requests_per_hour": 20.0, "duty_cycle": 0.2}
    >>> fb.score_one(research)
    0.0
    >>> for _ in range(20):
    ...     fb.learn_one(research, False)
    >>> fb.score_one(research) < -2.0
    True
    >>> bulk = {"cot_elicitation_rate": 0.95, "requests_per_hour": 900.0,
    ...         "requests_per_hour_6h": 900.0, "duty_cycle": 1.0, "scripted_client_rate": 1.0}
    >>> round(fb.score_one(bulk), 1)
    -0.0
    """

    def __init__(
        self,
        bandwidth: float = 0.05,
        strength: float = 3.0,
        max_adjustment: float = 4.0,
        capacity: int = 512,
        min_per_class: int = 10,
        population_capacity: int = 512,
        confirmed_max: float = 7.0,
        ratio_from: float = 10.0,
        ratio_full: float = 30.0,
    ) -> None:
        self.bandwidth = bandwidth
        self.strength = strength
        self.max_adjustment = max_adjustment
        self.capacity = capacity
        self.min_per_class = min_per_class
        self.population_capacity = population_capacity
        self.confirmed_max = confirmed_max
        self.ratio_from = ratio_from
        self.ratio_full = max(ratio_full, ratio_from * (1 + 1e-9))
        self._memory: dict[bool, list[list[float]]] = {False: [], True: []}
        self._matrix: dict[bool, np.ndarray | None] = {False: None, True: None}
        self._seen = {False: 0, True: 0}
        self._lr = _new_lr()
        #: rows written in place, oldest overwritten: a score reads it without a copy
        self._population = np.zeros(
            (population_capacity, len(MODEL_SIGNAL_NAMES)), dtype=np.float64
        )
        self._population_n = 0
        self._population_next = 0

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        y = bool(y)
        memory = self._memory[y]
        vector = unit_vector(x)
        memory.append(vector)
        if len(memory) > self.capacity:
            del memory[0]
        self._matrix[y] = None
        self._seen[y] += 1
        # Balanced: each class weighs as much as the other whatever their counts so far.
        total = self._seen[False] + self._seen[True]
        w = min(10.0, max(0.1, total / (2.0 * self._seen[y])))
        self._lr.learn_one(dict(zip(MODEL_SIGNAL_NAMES, vector, strict=True)), y, w)

    def observe_one(self, x: dict[str, float]) -> None:
        """Remember an (unlabelled) population account's vector, for the density ratio."""
        if self.population_capacity <= 0:
            return
        i = self._population_next
        self._population[i] = unit_vector(x)
        self._population_next = (i + 1) % self.population_capacity
        self._population_n = min(self._population_n + 1, self.population_capacity)

    def kernel_mass(self, x: dict[str, float], y: bool) -> float:
        """Sum of Gaussian kernels between ``x`` and the remembered labels of class ``y``."""
        return self._mass(self._labelled(y), np.asarray(unit_vector(x), dtype=np.float64))

    def _labelled(self, y: bool) -> np.ndarray | None:
        memory = self._memory[y]
        if not memory:
            return None
        matrix = self._matrix[y]
        if matrix is None:
            matrix = self._matrix[y] = np.asarray(memory, dtype=np.float64)
        return matrix

    def _mass(self, matrix: np.ndarray | None, u: np.ndarray) -> float:
        if matrix is None or not len(matrix):
            return 0.0
        diff = matrix - u
        rms2 = np.einsum("ij,ij->i", diff, diff) / matrix.shape[1]
        return float(np.exp(-0.5 * rms2 / (self.bandwidth * self.bandwidth)).sum())

    def confirmed_share(self, x: dict[str, float]) -> float:
        """How much of the confirmed lift ``x`` gets, in [0, 1] (the density-ratio ramp)."""
        return self._confirmed_share(np.asarray(unit_vector(x), dtype=np.float64))

    def _confirmed_share(self, u: np.ndarray, confirmed: float | None = None) -> float:
        if confirmed is None:
            confirmed = self._mass(self._labelled(True), u)
        if confirmed <= 0.0:
            return 0.0
        others = 0.0
        if self._population_n:
            others += self._mass(self._population[: self._population_n], u) / self._population_n
        dismissed = self._labelled(False)
        if dismissed is not None:
            others += self._mass(dismissed, u) / len(dismissed)
        if others <= 0.0:
            return 1.0  # nothing else known around it: the labels are all there is
        ratio = (confirmed / len(self._memory[True])) / others
        ramp = math.log(ratio / self.ratio_from) / math.log(self.ratio_full / self.ratio_from)
        return min(1.0, max(0.0, ramp))

    def score_one(self, x: dict[str, float]) -> float:
        """Log-odds adjustment, at least ``-max_adjustment`` and at most the larger of
        ``max_adjustment`` and ``confirmed_max``; 0 with no labels."""
        if not (self._seen[False] or self._seen[True]):
            return 0.0
        u = np.asarray(unit_vector(x), dtype=np.float64)
        adj = -self.strength * math.tanh(self._mass(self._labelled(False), u))
        confirmed = self._mass(self._labelled(True), u)
        if confirmed > 1e-3:
            share = self._confirmed_share(u, confirmed)
            adj += self.confirmed_max * math.tanh(confirmed) * share
        if min(self._seen.values()) >= self.min_per_class:
            v = dict(zip(MODEL_SIGNAL_NAMES, u.tolist(), strict=True))
            p = self._lr.predict_proba_one(v).get(True, 0.5)
            p = min(max(p, 1e-4), 1 - 1e-4)
            adj += math.log(p / (1.0 - p))
        return max(-self.max_adjustment, min(max(self.max_adjustment, self.confirmed_max), adj))

    def labels_seen(self) -> tuple[int, int]:
        """(dismissed, confirmed) labels learnt."""
        return self._seen[False], self._seen[True]

    # -- state ------------------------------------------------------------------------

    def to_state(self) -> FeedbackState:
        lr = self._lr
        return FeedbackState(
            bandwidth=self.bandwidth,
            strength=self.strength,
            max_adjustment=self.max_adjustment,
            capacity=self.capacity,
            min_per_class=self.min_per_class,
            benign=[list(row) for row in self._memory[False]],
            distiller=[list(row) for row in self._memory[True]],
            seen_benign=self._seen[False],
            seen_distiller=self._seen[True],
            lr=LogisticState(
                weights=dict(lr._weights),
                intercept=lr.intercept,
                iterations=lr.optimizer.n_iterations,
            ),
            population=self._population[: self._population_n].tolist(),
            population_next=self._population_next,
        )

    @classmethod
    def from_state(
        cls,
        state: FeedbackState | dict[str, Any],
        *,
        population_capacity: int = 512,
        confirmed_max: float = 7.0,
        ratio_from: float = 10.0,
        ratio_full: float = 30.0,
    ) -> LabelFeedback:
        """Inverse of :meth:`to_state` (or its plain msgpack form); ValueError on bad rows.

        The density-ratio parameters are settings, not learnt: the caller's apply.
        """
        state = as_state(state, FeedbackState)
        fb = cls(
            state.bandwidth,
            state.strength,
            state.max_adjustment,
            state.capacity,
            state.min_per_class,
            population_capacity,
            confirmed_max,
            ratio_from,
            ratio_full,
        )
        width = len(MODEL_SIGNAL_NAMES)
        for rows, y in ((state.benign, False), (state.distiller, True)):
            if any(len(row) != width for row in rows):
                raise ValueError(f"label memory rows must have {width} values")
            fb._memory[y] = [list(row) for row in rows]
        fb._seen = {False: state.seen_benign, True: state.seen_distiller}
        fb._lr._weights = utils.VectorDict(dict(state.lr.weights))
        fb._lr.intercept = state.lr.intercept
        fb._lr.optimizer.n_iterations = state.lr.iterations
        if any(len(row) != width for row in state.population):
            raise ValueError(f"population rows must have {width} values")
        n = min(len(state.population), fb.population_capacity)
        if n:
            fb._population[:n] = np.asarray(state.population[:n], dtype=np.float64)
        fb._population_n = n
        fb._population_next = state.population_next % fb.population_capacity if n else 0
        return fb


def _new_lr() -> linear_model.LogisticRegression:
    return linear_model.LogisticRegression(optimizer=optim.SGD(0.05), l2=1e-3)
