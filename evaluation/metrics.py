"""Account-level detection metrics: pure functions of labels, scores and alert flags.

Scores are "higher means more suspicious"; labels are 1 for distiller, 0 for benign.
Undefined quantities (no positives, nothing alerted) are ``nan``/``None``, never a
made-up 0, so a report cannot look better than the data allow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def _arrays(y: Sequence[int], s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    ya, sa = np.asarray(y, dtype=np.int64), np.asarray(s, dtype=np.float64)
    if ya.shape != sa.shape:
        raise ValueError("labels and scores differ in length")
    return ya, sa


def pr_auc(y: Sequence[int], s: Sequence[float]) -> float:
    """Average precision (area under the PR curve, step-wise, as scikit-learn defines it).

    >>> pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.8333333333333333
    """
    ya, sa = _arrays(y, s)
    if ya.sum() == 0:
        return math.nan
    return float(average_precision_score(ya, sa))


def roc_auc(y: Sequence[int], s: Sequence[float]) -> float:
    """Probability a random distiller outscores a random benign account (ties count half).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    ya, sa = _arrays(y, s)
    if ya.min(initial=1) == ya.max(initial=0):
        return math.nan
    return float(roc_auc_score(ya, sa))


def pr_curve(y: Sequence[int], s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) points for plotting."""
    ya, sa = _arrays(y, s)
    precision, recall, _ = precision_recall_curve(ya, sa)
    return recall, precision


def recall_at_fpr(
    y: Sequence[int], s: Sequence[float], max_fpr: float = 0.001
) -> tuple[float, float]:
    """Best recall whose benign false-positive rate stays <= ``max_fpr``, and its threshold.

    Flags are ``score > threshold``; with ``k = floor(max_fpr * benign)`` false positives
    allowed, the threshold is the (k+1)-th highest benign score, so ties with it are
    not flagged (a tie cannot be split without flagging more benign accounts).

    >>> recall_at_fpr([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.5, 0.4, 0.6, 0.9], max_fpr=0.0)
    (0.6666666666666666, 0.5)
    """
    ya, sa = _arrays(y, s)
    pos, neg = sa[ya == 1], np.sort(sa[ya == 0])[::-1]
    if len(pos) == 0:
        return math.nan, math.nan
    allowed = math.floor(max_fpr * len(neg) + 1e-9)
    if allowed >= len(neg):
        return 1.0, -math.inf
    threshold = float(neg[allowed])
    return float(np.mean(pos > threshold)), threshold


def precision_recall(y: Sequence[int], flagged: Sequence[bool]) -> dict[str, float | int]:
    """Precision and recall of a yes/no decision, with the counts behind them.

    >>> precision_recall([1, 1, 0, 0, 1], [True, False, True, False, True])["precision"]
    0.6666666666666666
    """
    ya = np.asarray(y, dtype=bool)
    fa = np.asarray(flagged, dtype=bool)
    tp, fp = int(np.sum(ya & fa)), int(np.sum(~ya & fa))
    fn = int(np.sum(ya & ~fa))
    return {
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "benign_fpr": fp / int(np.sum(~ya)) if np.any(~ya) else math.nan,
    }


def coverage(groups: Mapping[str, str], flagged: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per group (campaign, archetype): how many of its accounts were flagged, out of how many.

    >>> coverage({"a": "c1", "b": "c1", "c": "c2"}, {"a"})
    {'c1': {'flagged': 1, 'total': 2, 'share': 0.5}, 'c2': {'flagged': 0, 'total': 1, 'share': 0.0}}
    """
    flagged = set(flagged)
    out: dict[str, dict[str, float]] = {}
    for acct, group in groups.items():
        g = out.setdefault(group, {"flagged": 0, "total": 0, "share": 0.0})
        g["total"] += 1
        g["flagged"] += acct in flagged
    for g in out.values():
        g["share"] = g["flagged"] / g["total"]
    return dict(sorted(out.items()))


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median, 90th percentile and mean of a delay distribution (None when empty).

    >>> summary([1, 2, 3, 4, 100])
    {'n': 5, 'median': 3.0, 'p90': 61.6, 'mean': 22.0}
    """
    if len(values) == 0:
        return {"n": 0, "median": None, "p90": None, "mean": None}
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": len(a),
        "median": float(np.median(a)),
        "p90": round(float(np.percentile(a, 90)), 6),
        "mean": float(a.mean()),
    }


def cluster_metrics(
    clusters: Sequence[Sequence[str]], labels: Mapping[str, int], hydra: Iterable[str]
) -> dict[str, float | int]:
    """How well alerted clusters capture coordinated campaigns.

    ``hydra_coverage``: share of hydra accounts inside some alerted cluster;
    ``member_precision``: share of alerted-cluster memberships that are distillers;
    ``largest_benign``: most benign accounts in one alerted cluster.

    >>> out = cluster_metrics([["a", "b", "x"], ["y"]], {"a": 1, "b": 1, "c": 1, "x": 0, "y": 0},
    ...                       ["a", "b", "c"])
    >>> out["hydra_coverage"], out["member_precision"], out["largest_benign"]
    (0.6666666666666666, 0.5, 1)
    """
    hydra = set(hydra)
    members = [m for c in clusters for m in c]
    covered = {m for m in members if m in hydra}
    distillers = sum(labels.get(m, 0) == 1 for m in members)
    benign_sizes = [sum(labels.get(m, 0) == 0 for m in c) for c in clusters]
    return {
        "clusters": len(clusters),
        "hydra_coverage": len(covered) / len(hydra) if hydra else math.nan,
        "member_precision": distillers / len(members) if members else math.nan,
        "largest_benign": max(benign_sizes, default=0),
    }
