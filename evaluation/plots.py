"""PNG figures for the evaluation report (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from distillguard.evaluation import metrics
from distillguard.evaluation.evaluate import Evaluation


def pr_curves(ev: Evaluation, path: Path) -> Path:
    accounts = list(ev.truth)
    y = [ev.truth[a].label for a in accounts]
    prevalence = sum(y) / len(y) if y else 0.0
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    for method, m in zip(ev.methods, ev.metrics["methods"], strict=True):
        s = [method.scores.get(a, 0.0) for a in accounts]
        recall, precision = metrics.pr_curve(y, s)
        ap = m["pr_auc"]
        ax.step(recall, precision, where="post", label=f"{method.name} (AP {ap:.3f})")
    ax.axhline(prevalence, color="grey", lw=0.8, ls=":", label=f"chance ({prevalence:.3f})")
    ax.set(
        xlabel="recall (distiller accounts)",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="Account-level precision-recall",
    )
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def delay_cdf(ev: Evaluation, path: Path) -> Path:
    """Share of distiller accounts caught within N of their own events, per method."""
    distillers = [a for a, t in ev.truth.items() if t.label == 1]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=110)
    for method in ev.methods:
        delays = np.sort([method.events_before[a] for a in distillers if a in method.events_before])
        if len(delays) == 0:
            ax.plot([], [], label=f"{method.name} (none caught)")
            continue
        share = np.arange(1, len(delays) + 1) / max(len(distillers), 1)
        ax.step(np.maximum(delays, 0.5), share, where="post", label=method.name)
    ax.set_xscale("log")
    ax.set(
        xlabel="events of the account before its first alert",
        ylim=(0, 1.02),
        ylabel="share of distiller accounts caught",
        title="Detection delay (CDF)",
    )
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
