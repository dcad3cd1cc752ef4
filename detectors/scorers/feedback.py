"""Learning from analysts: confirmed and dismissed alerts move similar accounts' risk.

Two learners, because analysts' labels arrive few and one-sided at first (the first
twenty labels are usually dismissals of one noisy archetype):

- a *label memory* of labelled accounts' signal vectors (:func:`unit_vector`). An
  account close to dismissed ones is pulled down, close to confirmed ones pushed up,
  by a Gaussian kernel on the RMS distance. It works from the first label, needs no
  negatives to balance positives, and explains itself ("like 14 dismissed alerts");
- river's online :class:`~river.linear_model.LogisticRegression` on the same
  vectors, trusted only once both classes have enough labels to generalise from.

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
    ) -> None:
        self.bandwidth = bandwidth
        self.strength = strength
        self.max_adjustment = max_adjustment
        self.capacity = capacity
        self.min_per_class = min_per_class
        self._memory: dict[bool, list[list[float]]] = {False: [], True: []}
        self._matrix: dict[bool, np.ndarray | None] = {False: None, True: None}
        self._seen = {False: 0, True: 0}
        self._lr = _new_lr()

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        y = bool(y)
        memory = self._memory[y]
        vector = unit_vector(x)
        memory.append(vector)
        if len(memory) > self.capacity:
            del memory[0]
        self._matrix[y] = None
        self._seen[y] += 1
        self._lr.learn_one(dict(zip(MODEL_SIGNAL_NAMES, vector, strict=True)), y)

    def kernel_mass(self, x: dict[str, float], y: bool) -> float:
        """Sum of Gaussian kernels between ``x`` and the remembered labels of class ``y``."""
        memory = self._memory[y]
        if not memory:
            return 0.0
        matrix = self._matrix[y]
        if matrix is None:
            matrix = self._matrix[y] = np.asarray(memory, dtype=np.float64)
        diff = matrix - np.asarray(unit_vector(x), dtype=np.float64)
        rms2 = np.einsum("ij,ij->i", diff, diff) / matrix.shape[1]
        return float(np.exp(-0.5 * rms2 / (self.bandwidth * self.bandwidth)).sum())

    def score_one(self, x: dict[str, float]) -> float:
        """Log-odds adjustment in ``[-max_adjustment, max_adjustment]``; 0 with no labels."""
        if not (self._seen[False] or self._seen[True]):
            return 0.0
        adj = self.strength * (
            math.tanh(self.kernel_mass(x, True)) - math.tanh(self.kernel_mass(x, False))
        )
        if min(self._seen.values()) >= self.min_per_class:
            v = dict(zip(MODEL_SIGNAL_NAMES, unit_vector(x), strict=True))
            p = self._lr.predict_proba_one(v).get(True, 0.5)
            p = min(max(p, 1e-4), 1 - 1e-4)
            adj += math.log(p / (1.0 - p))
        return max(-self.max_adjustment, min(self.max_adjustment, adj))

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
        )

    @classmethod
    def from_state(cls, state: FeedbackState | dict[str, Any]) -> LabelFeedback:
        """Inverse of :meth:`to_state` (or its plain msgpack form); ValueError on bad rows."""
        state = as_state(state, FeedbackState)
        fb = cls(
            state.bandwidth,
            state.strength,
            state.max_adjustment,
            state.capacity,
            state.min_per_class,
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
        return fb


def _new_lr() -> linear_model.LogisticRegression:
    return linear_model.LogisticRegression(optimizer=optim.SGD(0.05), l2=1e-3)
